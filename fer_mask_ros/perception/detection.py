"""Face detector: boxes, scores and 5 landmarks, for faces with and without masks.

Two networks behind one interface, both run with onnxruntime on the CPU and both fine-tuned here for
masked faces (models/DETECTOR.md): CenterFace (MobileNetV2 + CenterNet-style heads, MIT licence,
``models/centerface.onnx``, `FaceDetector`) and YuNet (libfacedetection, 75k parameters, MIT licence,
``models/yunet.onnx``, `YuNetDetector`, about five times cheaper).  `make_detector(name)` builds
either by name (``~detector`` / ``--detector``).  Nothing is downloaded at run time.

Landmark order (``Detection.landmarks``, shape (5, 2), pixel x, y of the input image):
0 left eye, 1 right eye, 2 nose tip, 3 left mouth corner, 4 right mouth corner,
where *left/right are as seen in the image* (index 0 is the eye with the smaller x
on an upright face, i.e. the subject's own right eye).

Choice, thresholds and measurements: docs/DETECTION.md.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros.config import model_path
from fer_mask_ros.errors import DetectorError
from fer_mask_ros.imaging import to_bgr
from fer_mask_ros.perception.yunet import decode_yunet, output_names

try:  # cv2 is needed for resizing and colour conversion only
    import cv2
except ImportError:  # pragma: no cover - opencv is a hard runtime dependency
    cv2 = None

__all__ = [
    "DEFAULT_MODEL_PATH",
    "DETECTORS",
    "DEFAULT_SCORE_THRESHOLD",
    "REGION_CONTEXT",
    "REGION_MAX_ZOOM",
    "REGION_SIDE",
    "REGION_THRESHOLD_FACTOR",
    "Detection",
    "DetectorError",
    "FaceDetector",
    "YuNetDetector",
    "decode_centerface",
    "default_detector_name",
    "iou",
    "make_detector",
    "nms",
    "to_bgr",
]

#: CenterFace's model; override with the environment variable FER_MASK_DETECTOR_MODEL.
DEFAULT_MODEL_PATH = model_path("centerface.onnx")

#: Tuned on the tuning split of masked-faces-real (docs/DETECTION.md).
DEFAULT_SCORE_THRESHOLD = 0.2
#: YuNet's (sqrt(cls * obj)), chosen the same way (docs/DETECTION.md).
YUNET_SCORE_THRESHOLD = 0.8
DEFAULT_NMS_THRESHOLD = 0.3
#: Smallest face height (pixels of the input image) the detector is set up to find.
DEFAULT_MIN_FACE = 40
#: Face height (pixels at the network input) that CenterFace still finds reliably, masked
#: faces included; the input is scaled by NET_MIN_FACE / min_face (never up), so the
#: default min_face runs at full resolution and min_face=80 runs at half (4x faster).
NET_MIN_FACE = 40
#: Longest network-input side; bigger images are downscaled further (640x480 -> 480x360).
DEFAULT_MAX_INPUT_SIDE = 480
#: detect_near: window = REGION_CONTEXT x the face box, scaled to REGION_SIDE pixels (at most
#: REGION_MAX_ZOOM x), so a tracked face is re-found at about 80 px for a quarter of a QVGA scan's cost.
#: Chosen on tune-split masked photos: 1.6 / 128 re-found 96 % of the faces a full scan found (docs/DETECTION.md).
REGION_CONTEXT = 1.6
REGION_SIDE = 128
REGION_MAX_ZOOM = 3.0
REGION_THRESHOLD_FACTOR = 0.5
_STRIDE = 4
_ALIGN = 32


_shipped_model = model_path  # the parameter of FaceDetector.__init__ shadows the name


def _aligned(n: float) -> int:
    """`n` pixels rounded up to the network's multiple of 32 (what `_run` pads to)."""
    return int(np.ceil(max(1.0, round(n)) / _ALIGN) * _ALIGN)


@dataclass
class Detection:
    """One face. ``box`` is (x, y, w, h) in pixels of the image given to ``detect``."""

    box: Tuple[float, float, float, float]
    score: float
    landmarks: Optional[np.ndarray] = None  # (5, 2): l-eye, r-eye, nose, l-mouth, r-mouth (image left/right)

    @property
    def xyxy(self) -> Tuple[float, float, float, float]:
        x, y, w, h = self.box
        return (x, y, x + w, y + h)

    @property
    def center(self) -> Tuple[float, float]:
        x, y, w, h = self.box
        return (x + w / 2.0, y + h / 2.0)


# --------------------------------------------------------------------------- geometry


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = [float(v) for v in a]
    bx, by, bw, bh = [float(v) for v in b]
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = DEFAULT_NMS_THRESHOLD) -> List[int]:
    """Greedy non-maximum suppression.

    boxes: (N, 4) as x1, y1, x2, y2; scores: (N,).  Returns the indices kept, best
    score first.  A box is dropped when its IoU with a kept box is >= threshold.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"nms: {boxes.shape[0]} boxes but {scores.shape[0]} scores")
    if boxes.shape[0] == 0:
        return []
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep: List[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[overlap < threshold]
    return keep


def decode_centerface(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    threshold: float,
    stride: int = _STRIDE,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode CenterFace outputs into boxes, scores and landmarks (network-input pixels).

    heatmap (1, 1, h, w) in [0, 1]; scale (1, 2, h, w) = log(height/stride), log(width/stride);
    offset (1, 2, h, w) = sub-cell y, x offsets; landmarks (1, 10, h, w) = (y, x) pairs of the
    5 points, relative to the box's top-left corner in units of box height/width.

    Only local maxima (3x3) of the heatmap above ``threshold`` become candidates.
    Returns boxes (N, 4) x1, y1, x2, y2 (not clipped), scores (N,), landmarks (N, 5, 2) x, y.
    """
    hm = np.asarray(heatmap, dtype=np.float32).reshape(heatmap.shape[-2], heatmap.shape[-1])
    sc = np.asarray(scale, dtype=np.float32).reshape(2, hm.shape[0], hm.shape[1])
    of = np.asarray(offset, dtype=np.float32).reshape(2, hm.shape[0], hm.shape[1])
    lm = np.asarray(landmarks, dtype=np.float32).reshape(10, hm.shape[0], hm.shape[1])
    mask = hm > threshold
    if mask.any():
        # keep local maxima only (a 3x3 max filter done with padded shifts)
        padded = np.pad(hm, 1, mode="constant", constant_values=-1.0)
        local_max = np.ones_like(mask)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                if dy == 1 and dx == 1:
                    continue
                local_max &= hm >= padded[dy : dy + hm.shape[0], dx : dx + hm.shape[1]]
        mask &= local_max
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
    h = np.exp(sc[0, rows, cols]) * stride
    w = np.exp(sc[1, rows, cols]) * stride
    cy = (rows + of[0, rows, cols] + 0.5) * stride
    cx = (cols + of[1, rows, cols] + 0.5) * stride
    x1 = cx - w / 2.0
    y1 = cy - h / 2.0
    boxes = np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)
    pts = np.empty((rows.size, 5, 2), np.float32)
    for j in range(5):
        pts[:, j, 0] = lm[2 * j + 1, rows, cols] * w + x1
        pts[:, j, 1] = lm[2 * j, rows, cols] * h + y1
    return boxes, hm[rows, cols].astype(np.float32), pts


# --------------------------------------------------------------------------- images


# --------------------------------------------------------------------------- detector


class FaceDetector:
    """CenterFace on onnxruntime; the base of the other detectors (`YuNetDetector`).

    score_threshold: minimum heatmap peak (None = the detector's tuned default); nms_threshold: IoU for suppression;
    min_face: smallest face height (input pixels) to look for: the image is scaled by
    ``NET_MIN_FACE / min_face`` (at most 1) before the network, so a larger min_face is
    faster; detections smaller than ``min_face / 2`` are dropped.  max_input_side caps the
    network input so huge images stay fast.  num_threads: onnxruntime intra-op threads.

    A subclass names its network (``name``, ``model_file``, ``model_env``, ``default_score_threshold``,
    ``net_min_face``) and implements `_check_outputs` and `_candidates`; scaling, suppression, clipping,
    windows around tracked faces and the mapping back to image pixels are shared.
    """

    name = "centerface"
    model_file = "centerface.onnx"
    model_env = "FER_MASK_DETECTOR_MODEL"
    default_score_threshold = DEFAULT_SCORE_THRESHOLD
    net_min_face = NET_MIN_FACE

    def __init__(
        self,
        model_path: Optional[str] = None,
        score_threshold: Optional[float] = None,
        nms_threshold: float = DEFAULT_NMS_THRESHOLD,
        min_face: int = DEFAULT_MIN_FACE,
        num_threads: int = 1,
        max_input_side: int = DEFAULT_MAX_INPUT_SIDE,
    ) -> None:
        if model_path is None:
            model_path = os.environ.get(self.model_env) or _shipped_model(self.model_file)
        self.model_path = str(model_path)
        self.score_threshold = float(self.default_score_threshold if score_threshold is None else score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.min_face = max(1, int(min_face))
        self.max_input_side = max(_ALIGN, int(max_input_side))
        self.num_threads = max(1, int(num_threads))
        if not os.path.isfile(self.model_path):
            raise DetectorError(f"detector model not found: {self.model_path}")
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise DetectorError(f"onnxruntime is required to run the detector model {self.model_path}: {exc}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(self.model_path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several exception types for bad files
            raise DetectorError(f"cannot load detector model {self.model_path}: {exc}") from exc
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1:
            raise DetectorError(f"detector model {self.model_path} has {len(inputs)} inputs (expected 1)")
        self._input_name = inputs[0].name
        self._output_names = self._check_outputs([o.name for o in outputs])

    def _check_outputs(self, names: List[str]) -> List[str]:
        """The output names to run, in the order `_candidates` takes them; DetectorError for another model."""
        if len(names) != 4:
            raise DetectorError(f"detector model {self.model_path} is not a CenterFace model "
                                f"({len(names)} outputs; expected 4)")
        return names

    def _candidates(self, bgr: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (x1, y1, x2, y2), scores and landmarks in `bgr`'s pixels, before suppression."""
        heatmap, scale, offset, lms = self._run(bgr[:, :, ::-1])
        return decode_centerface(heatmap, scale, offset, lms, threshold)

    # -- helpers ---------------------------------------------------------------------
    def input_scale(self, height: int, width: int) -> float:
        """Factor applied to an image of this size before the network."""
        s = min(1.0, self.net_min_face / float(self.min_face))
        longest = max(height, width) * s
        if longest > self.max_input_side:
            s *= self.max_input_side / longest
        return s

    def _run(self, rgb: np.ndarray) -> Tuple[np.ndarray, ...]:
        h, w = rgb.shape[:2]
        ph, pw = _aligned(h), _aligned(w)
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :h, :w] = rgb.transpose(2, 0, 1)
        return tuple(self._session.run(self._output_names, {self._input_name: blob}))

    def _detect_scaled(self, bgr: np.ndarray, s: float, origin: Tuple[int, int], bounds: Tuple[int, int],
                       threshold: float) -> List[Detection]:
        """Run the network on `bgr` scaled by `s`; boxes in the frame whose region starts at `origin`,
        clipped to `bounds` (frame width, height)."""
        height, width = bgr.shape[:2]
        nw, nh = max(1, int(round(width * s))), max(1, int(round(height * s)))
        if (nw, nh) != (width, height):
            # INTER_AREA only where it matters (below half size): at 0.5 - 1 it costs 6 - 8x INTER_LINEAR (1.7 vs
            # 0.3 ms for VGA -> 480x360, 0.19 vs 0.03 ms per window) for the same recall (docs/DETECTION.md)
            small = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA if s < 0.5 else cv2.INTER_LINEAR)
        else:
            small = bgr
        boxes, scores, points = self._candidates(small, threshold)
        if boxes.shape[0] == 0:
            return []
        keep = nms(boxes, scores, self.nms_threshold)
        sx, sy = width / float(nw), height / float(nh)
        ox, oy = float(origin[0]), float(origin[1])
        frame_w, frame_h = float(bounds[0]), float(bounds[1])
        out: List[Detection] = []
        for i in keep:
            x1, y1, x2, y2 = boxes[i]
            x1, x2 = x1 * sx + ox, x2 * sx + ox
            y1, y2 = y1 * sy + oy, y2 * sy + oy
            if max(x2 - x1, y2 - y1) < self.min_face / 2.0:
                continue
            cx1, cy1 = max(0.0, float(x1)), max(0.0, float(y1))
            cx2, cy2 = min(frame_w, float(x2)), min(frame_h, float(y2))
            if cx2 - cx1 < 1 or cy2 - cy1 < 1:
                continue
            pts = points[i].astype(np.float32).copy()
            pts[:, 0] = pts[:, 0] * sx + ox
            pts[:, 1] = pts[:, 1] * sy + oy
            out.append(Detection(box=(cx1, cy1, cx2 - cx1, cy2 - cy1), score=float(scores[i]), landmarks=pts))
        return out

    # -- API -------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> List[Detection]:
        """Faces in a BGR / grey / BGRA uint8 image, best score first."""
        bgr = to_bgr(image)
        height, width = bgr.shape[:2]
        if height < 2 or width < 2:
            return []
        return self._detect_scaled(bgr, self.input_scale(height, width), (0, 0), (width, height),
                                   self.score_threshold)

    def network_pixels(self, height: int, width: int) -> int:
        """Pixels the network sees for a full scan of an image this size (its cost)."""
        s = self.input_scale(height, width)
        return _aligned(height * s) * _aligned(width * s)

    @staticmethod
    def region_pixels() -> int:
        """Most pixels the network sees for `detect_near` around one box (its cost)."""
        return _aligned(REGION_SIDE) ** 2

    def detect_near(self, image: np.ndarray, boxes: Sequence[Sequence[float]]) -> List[Optional[Detection]]:
        """Re-find each face near where it is expected: one small network run per box.

        A square window of ``REGION_CONTEXT`` x the box size around the box centre is scaled so that
        it is ``REGION_SIDE`` pixels wide (small faces are enlarged, at most ``REGION_MAX_ZOOM`` x),
        and the best detection whose centre lies inside the expected box is kept.  The face was found
        there a moment ago, so the score threshold is ``REGION_THRESHOLD_FACTOR`` x the detector's.  Returns one
        Detection, or None where the face was not found, per box; boxes are (x, y, w, h).
        """
        bgr = to_bgr(image)
        height, width = bgr.shape[:2]
        found: List[Optional[Detection]] = []
        for box in boxes:
            x, y, w, h = (float(v) for v in box)
            side = max(w, h, 1.0) * REGION_CONTEXT
            cx, cy = x + w / 2.0, y + h / 2.0
            x0, y0 = max(0, int(np.floor(cx - side / 2))), max(0, int(np.floor(cy - side / 2)))
            x1, y1 = min(width, int(np.ceil(cx + side / 2))), min(height, int(np.ceil(cy + side / 2)))
            if height < 2 or width < 2 or x1 - x0 < 2 or y1 - y0 < 2:
                found.append(None)
                continue
            # the window's whole extent (rounded outwards) fits REGION_SIDE: 129 px would be padded to 160
            s = min(REGION_SIDE / max(side, x1 - x0, y1 - y0), REGION_MAX_ZOOM)
            dets = self._detect_scaled(bgr[y0:y1, x0:x1], s, (x0, y0), (width, height),
                                       self.score_threshold * REGION_THRESHOLD_FACTOR)
            inside = [d for d in dets if x <= d.center[0] <= x + w and y <= d.center[1] <= y + h]
            found.append(inside[0] if inside else None)
        return found

    __call__ = detect


class YuNetDetector(FaceDetector):
    """YuNet (2023mar, fine-tuned for masked faces: models/DETECTOR.md) with the same interface and scaling.

    The model must have symbolic input dims (any H, W that are multiples of 32); the input is padded
    to them at the bottom and right, as OpenCV's FaceDetectorYN does.
    """

    name = "yunet"
    model_file = "yunet.onnx"
    model_env = "FER_MASK_YUNET_MODEL"
    default_score_threshold = YUNET_SCORE_THRESHOLD

    def _check_outputs(self, names: List[str]) -> List[str]:
        wanted = list(output_names())
        missing = [n for n in wanted if n not in names]
        if missing:
            raise DetectorError(f"detector model {self.model_path} is not a YuNet model (no output {missing[0]})")
        return wanted

    def _candidates(self, bgr: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = bgr.shape[:2]
        ph, pw = _aligned(h), _aligned(w)
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :h, :w] = bgr.transpose(2, 0, 1)
        try:
            values = self._session.run(self._output_names, {self._input_name: blob})
        except Exception as exc:  # a fixed-size export rejects other sizes
            raise DetectorError(f"detector model {self.model_path} cannot run a {pw}x{ph} input "
                                f"(it needs symbolic input dims: tools/eval_detector.py export-yunet): "
                                f"{str(exc).splitlines()[0]}") from None
        return decode_yunet(dict(zip(self._output_names, values)), ph, pw, threshold)


#: The detectors by the name ``~detector`` / ``--detector`` take.
DETECTORS = {"centerface": FaceDetector, "yunet": YuNetDetector}


def default_detector_name() -> str:
    """config/face_detector.yaml's ``detector`` (the node's and the CLI's default)."""
    from fer_mask_ros.config import node_default  # noqa: PLC0415 - reads the yaml only when asked

    return str(node_default("face_detector", "detector"))


def make_detector(name: Optional[str] = None, **kwargs) -> FaceDetector:
    """The detector called `name` (None or "" = the configured default) with FaceDetector's keyword
    arguments; DetectorError with one line for an unknown name."""
    key = (name or default_detector_name()).strip().lower()
    if key not in DETECTORS:
        raise DetectorError(f"unknown detector {name!r}: choose one of {', '.join(sorted(DETECTORS))}")
    return DETECTORS[key](**kwargs)


#: The settings `detector_from_settings` reads (the face_detector node's parameters of the same names).
DETECTOR_SETTINGS = ("detector", "detector_model", "score_threshold", "min_face", "num_threads")


def detector_from_settings(settings) -> FaceDetector:
    """The detector the face_detector node's parameters describe: a mapping with any of DETECTOR_SETTINGS;
    a missing, None, empty or 0 value keeps the default.  DetectorError (one line) for a bad value."""
    def given(name):
        value = settings.get(name)
        return None if value is None or value == "" or value == 0 else value

    kwargs = {"model_path": given("detector_model"), "num_threads": int(given("num_threads") or 1)}
    try:
        if given("score_threshold") is not None:
            kwargs["score_threshold"] = float(given("score_threshold"))
        if given("min_face") is not None:
            kwargs["min_face"] = int(given("min_face"))
    except (TypeError, ValueError) as exc:
        raise DetectorError(f"bad detector setting: {exc}") from None
    name = given("detector")
    if name is not None and not isinstance(name, str):
        raise DetectorError(f"unknown detector {name!r}: choose one of {', '.join(sorted(DETECTORS))}")
    return make_detector(name, **kwargs)
