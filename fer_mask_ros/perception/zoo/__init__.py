"""The classifier zoo: several expression models behind one interface, and their fusion.

Members (one module each): `fer_mask_net` (ours: grey 48 px aligned crop, knows masks, 1.1 ms per pass),
`faceapi` (face-api.js: padded square RGB 112 px, 2.0 ms), `mobilefacenet` (RAF-DB: ArcFace-aligned RGB
112 px, 11 ms as the shipped float copy). `--classifier fusion` runs them all and fuses them by condition
(perception/fusion.py, weights in models/fusion.json); naming one member runs that member alone, with our
net's mask head still giving the mask flag. Cards, costs and the fusion's fit: models/ZOO.md.

A `Zoo` is what the pipeline holds: its members, the fusion, and which member gives the mask flag.
"""
from __future__ import annotations

import os
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros.config import model_path
from fer_mask_ros.errors import ModelError
from fer_mask_ros.perception.fusion import Fusion
from fer_mask_ros.perception.zoo.base import Member, MemberOutput

__all__ = ["CLASSIFIER_NAMES", "DEFAULT_FUSION", "MEMBER_FILES", "MEMBER_NAMES", "Member", "MemberOutput", "Zoo",
           "ZooCrops", "default_classifier", "load_zoo", "make_member", "make_zoo"]

#: The members' model files in models/.
MEMBER_FILES = {
    "fer_mask_net": "fer_mask_net.pt",
    "faceapi": "faceapi_expression.onnx",
    "mobilefacenet": "mobilefacenet_rafdb.onnx",  # float copy of the int8 release (tools/dequantize_onnx.py)
}
MEMBER_NAMES = tuple(MEMBER_FILES)
#: What `--classifier` / `~classifier` accept.
CLASSIFIER_NAMES = ("fusion",) + MEMBER_NAMES
DEFAULT_FUSION = model_path("fusion.json")


def make_member(name: str, threads: Optional[int] = None, path: Optional[str] = None, classifier=None) -> Member:
    """One member by name; `path` overrides its shipped model file, `classifier` (fer_mask_net) an EmotionClassifier."""
    if name not in MEMBER_FILES:
        raise ModelError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIER_NAMES)}")
    if name == "fer_mask_net":
        from fer_mask_ros.perception.classifier import load_classifier
        from fer_mask_ros.perception.zoo.fer_mask_net import FerMaskNetMember

        return FerMaskNetMember(classifier if classifier is not None else load_classifier(path, threads))
    file = path or model_path(MEMBER_FILES[name])
    if name == "faceapi":
        from fer_mask_ros.perception.zoo.faceapi import FaceApiMember

        return FaceApiMember(file, num_threads=threads or 1)
    from fer_mask_ros.perception.zoo.mobilefacenet import MobileFaceNetMember

    return MobileFaceNetMember(file, num_threads=threads or 1)


class Zoo:
    """Members + fusion. `mask_member` (a member with a mask head) gives every face's mask flag."""

    def __init__(self, members: Mapping[str, Member], fusion: Fusion, name: str = "fusion") -> None:
        self.members: Dict[str, Member] = dict(members)
        missing = [m for m in fusion.members if m not in self.members]
        if missing:
            raise ModelError(f"the fusion needs members {missing}, which are not loaded")
        heads = [m for m, member in self.members.items() if member.has_mask_head]
        if not heads:
            raise ModelError("no member with a mask head (fer_mask_net) is loaded")
        self.mask_member = heads[0]
        self.fusion = fusion
        self.name = name

    @property
    def model_path(self) -> str:
        """Our net's model file (the mask flag's member): what a summary names first."""
        return self.members[self.mask_member].model_path

    @property
    def fast(self) -> str:
        """The cheapest member the fusion uses (what a schedule runs most often)."""
        used = [m for m in self.members if m in self.fusion.members] or list(self.members)
        return min(used, key=lambda m: self.members[m].cost_ms)

    def run_order(self) -> Tuple[str, ...]:
        """The members that have to run for a full answer: the mask member first, then the fusion's, cheapest first."""
        names = [self.mask_member] + sorted((m for m in self.fusion.members if m != self.mask_member),
                                            key=lambda m: self.members[m].cost_ms)
        return tuple(dict.fromkeys(names))

    def predict(self, image_bgr: np.ndarray, detections: Sequence, names: Optional[Sequence[str]] = None,
                flip: Optional[bool] = None) -> Dict[str, MemberOutput]:
        """{member: its output} for the named members (default: every member run_order lists)."""
        return {n: self.members[n].predict_faces(image_bgr, detections, flip) for n in (names or self.run_order())}

    def fuse(self, outputs: Mapping[str, MemberOutput]) -> Tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, 7), mask probabilities (N,)) from members' outputs; the mask member must be there."""
        if self.mask_member not in outputs:
            raise ValueError(f"the mask flag needs {self.mask_member}'s output")
        mask = outputs[self.mask_member].mask_prob
        used = {n: o.log_probs for n, o in outputs.items() if n in self.fusion.members}
        return self.fusion.combine(used, mask), mask

    def predict_fer_crops(self, crops: np.ndarray, flip: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(probabilities, mask probabilities) of FER2013-framed grey crops, fused as for a photo."""
        outputs = {n: self.members[n].predict_fer_crops(crops, flip) for n in self.run_order()}
        return self.fuse(outputs)

    def crop_classifier(self) -> ZooCrops:
        """An object with EmotionClassifier's predict_batch over FER-framed crops (evaluate's crop sources)."""
        return ZooCrops(self)

    def model_files(self) -> Dict[str, str]:
        files = {n: m.model_path for n, m in self.members.items()}
        if self.name == "fusion":
            files["fusion"] = self.fusion.provenance.get("path", DEFAULT_FUSION)
        return files


class ZooCrops:
    """`predict_batch(crops, batch_size, flip)` of the zoo, for code written against EmotionClassifier."""

    def __init__(self, zoo: Zoo) -> None:
        self.zoo = zoo

    def predict_batch(self, images: np.ndarray, batch_size: int = 256,
                      flip: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
        probs, masks = [], []
        for start in range(0, len(images), max(1, int(batch_size))):
            p, m = self.zoo.predict_fer_crops(images[start:start + batch_size], flip)
            probs.append(p)
            masks.append(m)
        if not probs:
            return np.zeros((0, 7)), np.zeros((0,))
        return np.concatenate(probs), np.concatenate(masks)


def default_classifier(still: bool = False) -> str:
    """config/emotion_classifier.yaml's `still_classifier` (photos) or `classifier` (streams)."""
    from fer_mask_ros.config import node_default

    return str(node_default("emotion_classifier", "still_classifier" if still else "classifier"))


def load_zoo(name: Optional[str], model: Optional[str] = None, threads: Optional[int] = None,
             backend: str = "auto", still: bool = False) -> Zoo:
    """The zoo for `--classifier NAME` / `~classifier` (None = config/emotion_classifier.yaml's default for stills
    or streams), our net from `model` (None = shipped) on `backend`; ModelError with one line for any problem."""
    from fer_mask_ros.perception.classifier import load_classifier

    if name is None:
        name = default_classifier(still)
    if name not in CLASSIFIER_NAMES:  # before any model is loaded
        raise ModelError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIER_NAMES)}")
    try:
        return make_zoo(name, threads, classifier=load_classifier(model, threads, backend))
    except ModelError as exc:
        raise ModelError(str(exc).splitlines()[0]) from None


def make_zoo(name: str = "fer_mask_net", threads: Optional[int] = None, model: Optional[str] = None,
             fusion_path: Optional[str] = None, classifier=None) -> Zoo:
    """A zoo by `--classifier` name: "fusion" = every member the fusion file weighs; a member name = that member
    alone (with fer_mask_net for the mask flag). `model` overrides fer_mask_net's model file."""
    if name not in CLASSIFIER_NAMES:
        raise ModelError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIER_NAMES)}")
    mask_net = make_member("fer_mask_net", threads, model, classifier)
    members: Dict[str, Member] = {"fer_mask_net": mask_net}
    if name == "fusion":
        path = fusion_path or DEFAULT_FUSION
        fusion = Fusion.load(path)
        fusion.provenance.setdefault("path", os.path.abspath(path))
        for m in fusion.members:
            if m not in members:
                members[m] = make_member(m, threads)
    else:
        if name != "fer_mask_net":
            members[name] = make_member(name, threads)
        fusion = Fusion.single(name)
    return Zoo(members, fusion, name)
