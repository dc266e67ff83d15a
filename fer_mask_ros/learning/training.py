"""Training: FER2013 Training split, model selection on PublicTest, mask augmentation.

Every image has K synthetic-mask variants drawn up front (masking.apply_mask, the same code
as the `mask` command) so the per-step work is tensor-only and runs on the GPU when there is
one. Each sample is shown masked with probability `mask_prob`; the mask head learns "mask
present" from that choice, plus real photos when `mask_photos` is given (by default in the same
forward pass, so BatchNorm statistics match between training and use). With `swa_start`, the
weights of every later epoch are averaged (stochastic weight averaging) and the average competes
for best.pt. With `teacher`, a trained model's softened outputs are a second target (with
`teacher_flip`, averaged over each face and its mirror image; with `photo_teacher`, photo-source
samples take that model's targets instead, so each source is taught by its specialist; with
`teacher_sees_clean`, the teacher looks at the same augmented face without its mask, so the student
learns from the upper face what the whole face shows). channels_last always; bf16 autocast where
the hardware runs it fast (AMX, GPU).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.learning.datasets import FaceDataset, load_dataset
from fer_mask_ros.learning.evaluation import classification_metrics
from fer_mask_ros.learning.masking import apply_mask

#: what train's OUTPUT/checkpoint.pt holds
CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "best_score")


def read_checkpoint(path: str, map_location="cpu") -> dict:
    """A training checkpoint (OUTPUT/checkpoint.pt) read with torch.load(weights_only=True); ValueError in one line
    for a file that is refused (pickled code), damaged or not a checkpoint of `train`."""
    import torch

    from fer_mask_ros.perception.classifier import torch_load_problem

    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickled code refused, truncated zip, not a torch file
        raise ValueError(f"--resume: cannot read {path}: {torch_load_problem(exc)}") from None
    if not isinstance(state, dict) or not all(k in state for k in CHECKPOINT_KEYS):
        raise ValueError(f"--resume: {path} is not a checkpoint written by train (expected the keys "
                         f"{', '.join(CHECKPOINT_KEYS)})")
    return state


@dataclass
class TrainConfig:
    data: str
    output: str = "runs/train"
    epochs: int = 60
    batch_size: int = 256
    lr: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    widths: Tuple[int, ...] = (24, 48, 96, 192)
    dropout: float = 0.3
    mask_variants: int = 4
    mask_prob: float = 0.5
    aug_strength: float = 1.0
    mask_loss_weight: float = 0.3
    mask_photos: Optional[str] = None
    photo_forward: str = "joint"  # "joint": photos ride in the FER batch; "separate": own forward (phases 1-5)
    teacher: Optional[str] = None
    teacher_flip: bool = False  # the teacher's target averages its outputs on the face and its mirror image
    photo_teacher: Optional[str] = None  # teacher of the photo-source samples (default: `teacher`)
    init: Optional[str] = None  # start from this model file's weights (fine-tuning, a second schedule)
    kd_alpha: float = 0.6
    kd_temperature: float = 4.0
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    limit: int = 0
    resume: bool = False
    warmup_epochs: int = 2
    val_seed: int = 12345
    time_budget: float = 0.0  # seconds; when set, the epoch count shrinks to fit after epoch 2 (fit_schedule)
    swa_start: int = 0  # from this epoch on (1-based), hold the LR at swa_lr and average the weights; 0 = off
    swa_lr: float = 0.0  # 0 = half of lr
    swa_bn_images: int = 8192  # training images used to re-estimate BatchNorm statistics of the average
    # second sources: <root>/<label>/* photo folders, cut by the live detector + aligned crop; their
    # photo_sources.is_holdout part is never trained on and joins model selection (balanced accuracy)
    photo_sources: Tuple[str, ...] = ()
    photo_repeat: int = 3  # each training photo crop appears this many times per epoch
    logit_adjust: float = 0.0  # tau of the logit-adjusted loss (Menon et al. 2021); 0 = plain cross-entropy
    camera_aug: float = 0.0  # strength of camera-like augmentation (blur, gamma, lighting ramps)
    lower_face_erase: float = 0.0  # chance an unmasked face gets a random occluder over the lower face
    occluder_top: Tuple[float, float] = (0.5, 0.65)  # range of the occluder's top edge, in crop heights
    teacher_sees_clean: bool = False  # the teacher's targets for a masked face come from the same face unmasked
    real_mask_transfer: float = 0.0  # share of each mask variant's faces masked by real-mask transfer instead
    # the real-face teacher (RAF-DB MobileFaceNet ONNX): its logits on every training face, seen aligned its own
    # way and unmasked, are mixed class by class with `teacher`'s (real_teacher_weights); with mask_photos, the
    # training split's unmasked photos join as label-free samples taught by it alone
    real_teacher: Optional[str] = None
    progress: bool = True
    extra: Dict[str, object] = field(default_factory=dict)


def _mask_chunk(args) -> np.ndarray:
    images, seed, variant, start = args
    out = np.empty_like(images)
    for i in range(images.shape[0]):
        out[i] = apply_mask(images[i], np.random.default_rng([seed, variant, start + i]))
    return out


def masked_variants(images: np.ndarray, variants: int, seed: int, workers: int = 0) -> np.ndarray:
    """(variants, N, H, W) masked copies; image i of variant k uses rng([seed, k, i])."""
    chunk = 2048
    jobs = [(images[s:s + chunk], seed, k, s) for k in range(variants) for s in range(0, len(images), chunk)]
    if workers and workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_mask_chunk, jobs))
    else:
        parts = [_mask_chunk(j) for j in jobs]
    out = np.empty((variants,) + images.shape, dtype=np.uint8)
    per_variant = math.ceil(len(images) / chunk)
    for j, part in enumerate(parts):
        k, s = divmod(j, per_variant)
        out[k, s * chunk:s * chunk + part.shape[0]] = part
    return out


def held_out(path: str, fraction: float = 0.25) -> bool:
    """A stable split of real mask photos by file name (used for training vs reporting)."""
    digest = hashlib.sha1(os.path.basename(path).encode("utf-8")).digest()
    return digest[0] < int(256 * fraction)


def fit_schedule(epochs: int, swa_start: int, done: int, epoch_seconds: float, seconds_left: float) -> Tuple[int, int]:
    """The epoch count and SWA start that fit `seconds_left` after `done` epochs of `epoch_seconds` each.

    The count only shrinks. An averaging phase that has not begun keeps its share of the schedule, so a
    budget cut shortens the cosine and the average alike instead of dropping the average.
    """
    fit = max(done, min(epochs, done + int(seconds_left / max(epoch_seconds, 1e-3))))
    if swa_start > done and fit < epochs:
        swa_start = max(done + 1, min(fit - 1, round(swa_start * fit / epochs)))
    return fit, swa_start


def load_mask_photos(root: str, size: int = 48, with_landmarks: bool = False) -> tuple:
    """Real photos under root/with_mask and root/without_mask -> crops, 0/1 labels, paths, aligned flags
    (and with `with_landmarks`, each aligned crop's 5 detector landmarks in its photo, None for whole crops).

    Each photo gives its whole frame squeezed to a crop (what `classify --crops` sees) and, when the
    detector finds its face, the live graph's aligned crop (what photo mode and the live graph see);
    `aligned` is True for the latter.
    """
    from fer_mask_ros.imaging import walk_files
    from fer_mask_ros.learning.photo_sources import photo_crops
    from fer_mask_ros.perception.detection import make_detector

    detector = make_detector(num_threads=2)  # the live graph's detector
    images, labels, paths, aligned, marks = [], [], [], [], []
    for sub, flag in (("with_mask", 1), ("without_mask", 0)):
        folder = os.path.join(root, sub)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{folder}: expected with_mask/ and without_mask/ under {root}")
        files = walk_files(folder)
        cut = photo_crops(files, detector, size=size)
        for path, whole in zip(files, cut.whole):
            images.append(whole)
            labels.append(flag)
            paths.append(path)
            aligned.append(False)
            marks.append(None)
        for path, crop, found, landmarks in zip(files, cut.crops, cut.found, cut.landmarks):
            if found:
                images.append(crop)
                labels.append(flag)
                paths.append(path)
                aligned.append(True)
                marks.append(landmarks)
    out = (np.stack(images), np.asarray(labels, dtype=np.float32), paths, np.asarray(aligned, dtype=bool))
    return out + (marks,) if with_landmarks else out


def transfer_real_masks(images: np.ndarray, masked_crops: np.ndarray, rng: np.random.Generator,
                        fraction: float) -> np.ndarray:
    """Real-mask transfer on aligned crops: the lower face of a real masked photo's aligned crop (same
    framing as the training faces) replaces the lower face of `fraction` of `images`, blended over a few
    rows at a random height below the nose, brightness matched to the face above."""
    out = images.copy()
    n, h, w = images.shape
    chosen = np.flatnonzero(rng.random(n) < fraction)
    if not len(chosen) or not len(masked_crops):
        return out
    donors = masked_crops[rng.integers(0, len(masked_crops), len(chosen))].astype(np.float32)
    rows = np.arange(h, dtype=np.float32)[None, :, None]
    edge = h * rng.uniform(0.5, 0.62, size=(len(chosen), 1, 1)).astype(np.float32)
    blend = np.clip((rows - edge) / 3.0 + 0.5, 0.0, 1.0)
    faces = images[chosen].astype(np.float32)
    upper = faces[:, : h // 2].mean(axis=(1, 2), keepdims=True)
    donor_upper = donors[:, : h // 2].mean(axis=(1, 2), keepdims=True)
    donors = np.clip(donors + (upper - donor_upper) * 0.5, 0, 255)
    out[chosen] = np.clip(faces * (1 - blend) + donors * blend, 0, 255).astype(np.uint8)
    return out


def _select_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def bf16_is_fast(device) -> bool:
    """bf16 autocast pays off on GPUs and on CPUs with AMX / AVX512-BF16; elsewhere it is emulated and slow."""
    if device.type == "cuda":
        return True
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def augment(x, generator, strength: float = 1.0, camera: float = 0.0):
    """GPU/CPU batch augmentation of uint8 crops (B, H, W) -> float (B, 1, H, W) in [0, 1].

    `strength` scales the geometric range and the chances of low resolution, noise and erasing
    (0 = flips only; a weaker last schedule lets a small net fit the data more closely).
    """
    import torch
    import torch.nn.functional as F

    b, h, w = x.shape
    dev = x.device
    x = x.float().unsqueeze(1) / 255.0

    def rand(*shape):
        return torch.rand(*shape, device=dev, generator=generator)

    flip = rand(b) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    angle = (rand(b) * 2 - 1) * math.radians(15) * strength
    scale = 1.0 + (rand(b) * 2 - 1) * 0.12 * strength
    tx, ty = (rand(b) * 2 - 1) * 0.16 * strength, (rand(b) * 2 - 1) * 0.16 * strength
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = 1.0 + (rand(b, 1, 1, 1) * 2 - 1) * 0.35 * strength
    bright = (rand(b, 1, 1, 1) * 2 - 1) * 0.15 * strength
    x = (x - 0.5) * contrast + 0.5 + bright
    if camera > 0:
        x = camera_augment(x, rand, camera)
    lowres = rand(b) < 0.2 * strength
    if lowres.any():
        small = F.interpolate(x[lowres], size=(h // 2, w // 2), mode="bilinear", align_corners=False)
        x[lowres] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    noisy = (rand(b, 1, 1, 1) < 0.2 * strength).float()
    x = x + noisy * torch.randn(x.shape, device=dev, generator=generator) * 0.03
    erase = rand(b) < 0.25 * strength
    if erase.any():
        eh = (rand(b) * 0.3 + 0.1) * h
        ew = (rand(b) * 0.3 + 0.1) * w
        cy, cx = rand(b) * h, rand(b) * w
        yy = torch.arange(h, device=dev).view(1, h, 1)
        xx = torch.arange(w, device=dev).view(1, 1, w)
        inside_y = (yy - cy.view(b, 1, 1)).abs() < eh.view(b, 1, 1) / 2
        box = inside_y & ((xx - cx.view(b, 1, 1)).abs() < ew.view(b, 1, 1) / 2)
        box = box & erase.view(b, 1, 1)
        x = torch.where(box.unsqueeze(1), rand(b, 1, 1, 1).expand_as(x), x)
    return x.clamp(0, 1)


def camera_augment(x, rand, strength: float = 1.0):
    """What a camera frame does to a face that FER2013 rarely shows: gamma, a lighting ramp across the
    face, defocus blur. x: float (B, 1, H, W) in [0, 1]; `rand(*shape)` draws uniform numbers."""
    import torch
    import torch.nn.functional as F

    b, _, h, w = x.shape
    dev = x.device
    gamma = torch.exp((rand(b, 1, 1, 1) * 2 - 1) * 0.5 * strength)
    x = x.clamp(1e-4, 1) ** gamma
    ramp_on = (rand(b, 1, 1, 1) < 0.35 * strength).float()
    angle = rand(b, 1, 1, 1) * 2 * math.pi
    yy = torch.linspace(-1, 1, h, device=dev).view(1, 1, h, 1)
    xx = torch.linspace(-1, 1, w, device=dev).view(1, 1, 1, w)
    x = x + ramp_on * rand(b, 1, 1, 1) * 0.3 * strength * (torch.cos(angle) * xx + torch.sin(angle) * yy)
    blur = rand(b) < 0.25 * strength
    if blur.any():
        k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=dev)
        k = (k[:, None] * k[None, :]) / 256.0
        blurred = F.conv2d(F.pad(x[blur], (2, 2, 2, 2), mode="replicate"), k.view(1, 1, 5, 5))
        mix = rand(int(blur.sum()), 1, 1, 1)
        x[blur] = mix * blurred + (1 - mix) * x[blur]
    return x


def erase_lower_face(x, rand, chosen, top_range=(0.5, 0.65)):
    """A generic occluder over the lower face of the `chosen` crops (uint8 (B, H, W)): a random level,
    grain, curved top edge and, on half of them, stripes or checks, so the net learns "lower face
    hidden" beyond the drawn mask kinds. `top_range`: where the top edge lies, in crop heights (the
    eyes of an aligned crop are near 0.4; a mask pulled up to the nose bridge starts near 0.45)."""
    import torch

    b, h, w = x.shape
    dev = x.device
    yy = torch.arange(h, device=dev).view(1, h, 1).float() / h
    xx = torch.linspace(-1, 1, w, device=dev).view(1, 1, w)
    low, high = top_range
    top = low + rand(b, 1, 1) * (high - low) + (rand(b, 1, 1) * 2 - 1) * 0.12 * xx ** 2
    level = rand(b, 1, 1) * 255
    grain = (rand(*x.shape) - 0.5) * rand(b, 1, 1) * 60
    theta = rand(b, 1, 1) * math.pi
    period = 0.15 + rand(b, 1, 1) * 0.5  # in half crop widths
    along = (xx * torch.cos(theta) + (yy * 2 - 1) * torch.sin(theta)) / period
    across = (-xx * torch.sin(theta) + (yy * 2 - 1) * torch.cos(theta)) / period
    checks = rand(b, 1, 1) < 0.5
    pattern = torch.where(checks, (torch.floor(along) + torch.floor(across)) % 2, (torch.floor(along) % 2))
    patterned = (rand(b, 1, 1) < 0.5).float()
    contrast = (rand(b, 1, 1) * 2 - 1) * 160 * patterned
    fill = (level + grain + contrast * (pattern - 0.5)).clamp(0, 255).to(x.dtype)
    region = (yy >= top) & chosen.view(b, 1, 1)
    return torch.where(region, fill, x)


def photo_source_crops(roots, detector=None, with_faces: bool = False):
    """(train crops, train labels, holdout crops, holdout labels, holdout found) of each photo source; with
    `with_faces`, also (train paths, train landmarks, holdout paths, holdout landmarks) for the real-face teacher."""
    from fer_mask_ros.learning.photo_sources import is_holdout, labelled_photos, photo_crops
    from fer_mask_ros.perception.detection import make_detector

    detector = detector or make_detector(num_threads=2)  # the live graph's detector
    out = []
    for root in roots:
        paths, labels = labelled_photos(root)
        cut = photo_crops(paths, detector)
        hold = np.array([is_holdout(p) for p in paths])
        train = ~hold & cut.found
        row = (cut.crops[train], labels[train], cut.crops[hold], labels[hold], cut.found[hold])
        if with_faces:
            row += ([p for p, k in zip(paths, train) if k], [m for m, k in zip(cut.landmarks, train) if k],
                    [p for p, k in zip(paths, hold) if k], [m for m, k in zip(cut.landmarks, hold) if k])
        out.append(row)
    return out


def real_teacher_weights(labels: np.ndarray, own_pred: np.ndarray, real_pred: np.ndarray,
                         floor: float = 0.1) -> np.ndarray:
    """Per class, the real-face teacher's share of the mixed soft target: its F1 over the sum of both teachers'
    F1 on a split neither trained on (class by class, each teacher weighs where it is stronger), kept in
    [floor, 1 - floor] so neither teacher is ever silenced."""
    def f1(pred):
        out = np.zeros(len(EMOTIONS))
        for k in range(len(EMOTIONS)):
            tp = float(np.sum((pred == k) & (labels == k)))
            denom = float(np.sum(pred == k) + np.sum(labels == k))
            out[k] = 2 * tp / denom if denom else 0.0
        return out

    own, real = f1(np.asarray(own_pred)), f1(np.asarray(real_pred))
    share = np.where(own + real > 0, real / np.maximum(own + real, 1e-9), 0.5)
    return np.clip(share, floor, 1 - floor)


def mix_teacher_targets(own_probs, real_logits, real_share, temperature: float):
    """Class-by-class mixture of the two teachers' softened targets: share * real + (1 - share) * own, renormalised.
    own_probs (B, 7) already softened, real_logits (B, 7), real_share (B, 7) in [0, 1]."""
    import torch.nn.functional as F

    real = F.softmax(real_logits.float() / temperature, 1)
    mixed = real_share * real + (1 - real_share) * own_probs
    return mixed / mixed.sum(1, keepdim=True)


def logit_adjusted_loss(logits, targets, log_prior, tau: float, label_smoothing: float = 0.0):
    """Cross-entropy on logits + tau * log(class prior): the net's own logits then rank classes as if
    they were balanced, so rare expressions (disgust, fear) are predicted when they are shown."""
    import torch.nn.functional as F

    return F.cross_entropy(logits + tau * log_prior, targets, label_smoothing=label_smoothing)


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        import torch

        if cfg.photo_forward not in ("joint", "separate"):
            raise ValueError(f"photo_forward must be 'joint' or 'separate', got {cfg.photo_forward!r}")
        if cfg.real_teacher and not os.path.isfile(cfg.real_teacher):
            raise ValueError(f"--real-teacher {cfg.real_teacher}: no such file (the RAF-DB MobileFaceNet ONNX model)")
        if cfg.teacher_sees_clean and not cfg.teacher:
            raise ValueError("teacher_sees_clean has no teacher (--teacher-sees-clean needs --teacher)")
        low, high = cfg.occluder_top
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"occluder_top must be 0 <= low <= high <= 1, got {tuple(cfg.occluder_top)} "
                             "(--occluder-top LOW,HIGH)")
        if cfg.teacher_flip and not cfg.teacher:
            raise ValueError("teacher_flip has no teacher to flip (--teacher-flip needs --teacher)")
        if cfg.photo_teacher and not (cfg.teacher and cfg.photo_sources):
            raise ValueError("photo_teacher needs a teacher and a photo source (--photo-teacher needs --teacher "
                             "and --photo-source)")
        self.cfg = cfg
        self.torch = torch
        torch.manual_seed(cfg.seed)
        self.device = _select_device(cfg.device)
        self.use_bf16 = bf16_is_fast(self.device)
        os.makedirs(cfg.output, exist_ok=True)
        self.log_path = os.path.join(cfg.output, "log.jsonl")

    def log(self, record: dict) -> None:
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def load_data(self) -> None:
        cfg = self.cfg
        t0 = time.time()
        faces_for_teacher = []  # (photo paths, landmarks) of the photo sources' training samples
        data = load_dataset(cfg.data)
        usages = np.asarray(data.usages)
        train = data.subset(usages == "Training")
        val = data.subset(usages == "PublicTest")
        if len(train) == 0 or len(val) == 0:
            raise ValueError(f"{cfg.data}: need Training and PublicTest images (FER2013 split)")
        if cfg.limit:
            rng = np.random.default_rng(cfg.seed)
            train = train.subset(np.sort(rng.permutation(len(train))[:cfg.limit]))
            val = val.subset(np.sort(rng.permutation(len(val))[:max(cfg.limit // 4, 8)]))
        self.photo_val = []
        self.n_fer = len(train)
        if cfg.photo_sources:
            extra_x, extra_y = [train.images], [train.labels]
            cuts = photo_source_crops(cfg.photo_sources, with_faces=True)
            self.photo_val_faces = []
            for root, (tx, ty, hx, hy, hfound, tpaths, tmarks, hpaths, hmarks) in zip(cfg.photo_sources, cuts):
                faces_for_teacher += [(tpaths, tmarks)] * cfg.photo_repeat
                self.photo_val_faces.append((hpaths, hmarks))
                extra_x += [tx] * cfg.photo_repeat
                extra_y += [ty] * cfg.photo_repeat
                self.photo_val.append((os.path.basename(os.path.normpath(root)), hx, hy, hfound))
                print(f"photo source {root}: {len(ty)} training crops (x{cfg.photo_repeat}), "
                      f"{len(hy)} held out ({int((~hfound).sum())} without a face)", flush=True)
            train = FaceDataset(np.concatenate(extra_x), np.concatenate(extra_y),
                                list(train.sources) + ["photo"] * (sum(len(v) for v in extra_y) - len(train)),
                                list(train.usages) + ["Training"] * (sum(len(v) for v in extra_y) - len(train)))
        self.photo_data = load_mask_photos(cfg.mask_photos, with_landmarks=True) if cfg.mask_photos else None
        self.real_logits = None
        if cfg.real_teacher:
            train = self._add_label_free_photos(train)
            self._load_real_teacher(train, val, faces_for_teacher)
        self.train_set: FaceDataset = train
        self.val_set: FaceDataset = val
        masked = masked_variants(train.images, cfg.mask_variants, cfg.seed, cfg.workers)
        if cfg.real_mask_transfer > 0 and self.photo_data is not None:
            images, flags, paths, aligned = self.photo_data[:4]
            # donors: the aligned crops of training-split masked photos
            donor = np.array([f == 1 and not held_out(p) for f, p in zip(flags, paths)]) & aligned
            rng = np.random.default_rng([cfg.seed, 4242])
            for k in range(cfg.mask_variants):
                transferred = transfer_real_masks(train.images, images[donor], rng, cfg.real_mask_transfer)
                changed = np.any(transferred != train.images, axis=(1, 2))
                masked[k][changed] = transferred[changed]
            print(f"real-mask transfer: {int(donor.sum())} real masked crops as donors", flush=True)
        val_masked = masked_variants(val.images, 1, cfg.val_seed, cfg.workers)[0]
        dev = self.device
        t = self.torch
        self.x_clean = t.from_numpy(train.images).to(dev)
        self.x_masked = t.from_numpy(masked).to(dev)
        self.y = t.from_numpy(train.labels).to(dev)
        self.is_photo = t.from_numpy(np.asarray(train.sources) == "photo").to(dev)
        prior = np.bincount(train.labels[train.labels >= 0], minlength=7).astype(np.float64) + 1.0
        self.log_prior = t.from_numpy(np.log(prior / prior.sum()).astype(np.float32)).to(dev)
        self.photo_val_masked = [masked_variants(hx, 1, cfg.val_seed, cfg.workers)[0] for _, hx, _, _ in self.photo_val]
        self.val_clean = t.from_numpy(val.images).to(dev)
        self.val_masked = t.from_numpy(val_masked).to(dev)
        self.val_y = t.from_numpy(val.labels).to(dev)
        self.photos = None
        if self.photo_data is not None:
            images, flags, paths = self.photo_data[:3]
            keep = np.array([not held_out(p) for p in paths])
            self.photos = (t.from_numpy(images[keep]).to(dev), t.from_numpy(flags[keep]).to(dev))
            self.photos_val = (t.from_numpy(images[~keep]).to(dev), t.from_numpy(flags[~keep]).to(dev))
        print(f"device: {self.device}, bf16 autocast: {self.use_bf16}", flush=True)
        print(f"data: {len(train)} train, {len(val)} val, {cfg.mask_variants} mask variants, "
              f"{0 if self.photos is None else len(self.photos[1])} real mask photos "
              f"({time.time() - t0:.0f} s)", flush=True)

    def _add_label_free_photos(self, train: FaceDataset) -> FaceDataset:
        """The training split's unmasked real photos (aligned crops) join as label-free samples (label -100,
        ignored by the cross-entropy): the real-face teacher alone teaches them."""
        self.label_free_faces: Tuple[List[str], list] = ([], [])
        if self.photo_data is None:
            return train
        images, flags, paths, aligned, marks = self.photo_data
        pick = [i for i in range(len(paths)) if flags[i] == 0 and aligned[i] and not held_out(paths[i])]
        if not pick:
            return train
        repeat = self.cfg.photo_repeat
        self.label_free_faces = ([paths[i] for i in pick] * repeat, [marks[i] for i in pick] * repeat)
        n = len(pick) * repeat
        print(f"real-face teacher: {len(pick)} unmasked mask-set photos join label-free (x{repeat})", flush=True)
        return FaceDataset(np.concatenate([train.images, np.tile(images[pick], (repeat, 1, 1))]),
                           np.concatenate([train.labels, np.full(n, -100, dtype=train.labels.dtype)]),
                           list(train.sources) + ["label_free"] * n, list(train.usages) + ["Training"] * n)

    def _load_real_teacher(self, train: FaceDataset, val: FaceDataset, photo_faces) -> None:
        """The real-face teacher's logits on every training sample and on the selection splits (cached in the run
        folder): FER2013 crops through the fixed FER landmarks, photos from the colour photo and its landmarks."""
        from fer_mask_ros.imaging import read_image, to_bgr
        from fer_mask_ros.perception.classifier import file_sha256
        from fer_mask_ros.perception.detection import default_detector_name
        from fer_mask_ros.perception.real_face_teacher import RealFaceTeacher

        cfg = self.cfg
        photo_paths = [p for paths, _ in photo_faces for p in paths] + list(self.label_free_faces[0])
        photo_marks = [m for _, marks in photo_faces for m in marks] + list(self.label_free_faces[1])
        val_faces = getattr(self, "photo_val_faces", [])
        key = hashlib.sha1(json.dumps([cfg.data, list(cfg.photo_sources), cfg.mask_photos, cfg.limit, self.n_fer,
                                       default_detector_name(),
                                       len(photo_paths), len(val), file_sha256(cfg.real_teacher)]).encode()).hexdigest()
        cache = os.path.join(cfg.output, "real_teacher.npz")
        if os.path.isfile(cache):
            stored = np.load(cache, allow_pickle=False)
            if str(stored["key"]) == key:
                self._set_real_teacher(stored["train"], stored["val"],
                                       [stored[f"photo_val_{i}"] for i in range(len(val_faces))])
                print(f"real-face teacher: logits from {cache}", flush=True)
                return
        teacher = RealFaceTeacher(cfg.real_teacher, num_threads=2)
        unique = {}
        for path, marks in zip(photo_paths, photo_marks):
            unique.setdefault(path, marks)
        for hpaths, hmarks in val_faces:
            for path, marks in zip(hpaths, hmarks):
                unique.setdefault(path, marks)
        logits_of = {}
        started = time.time()
        for path, marks in _progress(list(unique.items()), "teacher: photos", cfg.progress):
            out = None if marks is None else teacher.face_logits(to_bgr(read_image(path)), marks)
            logits_of[path] = np.full(7, np.nan, np.float32) if out is None else out
        fer = np.concatenate([teacher.fer_crop_logits(train.images[s:min(s + 512, self.n_fer)])
                              for s in _progress(range(0, self.n_fer, 512), "teacher: FER2013", cfg.progress)])
        val_logits = np.concatenate([teacher.fer_crop_logits(val.images[s:s + 512]) for s in range(0, len(val), 512)])
        photo = np.stack([logits_of[p] for p in photo_paths]) if photo_paths else np.zeros((0, 7), np.float32)
        train_logits = np.concatenate([fer, photo]).astype(np.float32)
        photo_val = [np.stack([logits_of[p] for p in hpaths]) if hpaths else np.zeros((0, 7), np.float32)
                     for hpaths, _ in val_faces]
        if len(train_logits) != len(train):
            raise RuntimeError(f"real-face teacher: {len(train_logits)} targets for {len(train)} samples")
        np.savez(cache + ".tmp.npz", key=key, train=train_logits, val=val_logits,
                 **{f"photo_val_{i}": v for i, v in enumerate(photo_val)})
        os.replace(cache + ".tmp.npz", cache)
        print(f"real-face teacher: logits for {len(unique)} photos and {self.n_fer + len(val)} FER2013 crops "
              f"({time.time() - started:.0f} s)", flush=True)
        self._set_real_teacher(train_logits, val_logits, photo_val)

    def _set_real_teacher(self, train_logits, val_logits, photo_val) -> None:
        self.real_logits = self.torch.from_numpy(np.nan_to_num(train_logits)).to(self.device)
        self.real_val_logits = val_logits
        self.real_photo_val_logits = photo_val

    def _real_teacher_shares(self) -> None:
        """Per sample and class, the real-face teacher's share of the soft target (real_teacher_weights): FER2013
        samples from the two teachers' F1 on PublicTest, photo and label-free samples on the photo hold-outs."""
        t = self.torch
        y = self.val_y.cpu().numpy()

        def own_pred(images):
            if self.teacher is None:
                return np.full(len(images), -1)
            out = [self._teacher_probs(images[s:s + 1024].float().unsqueeze(1).div(255.0)
                                       .to(memory_format=t.channels_last), 1.0).argmax(1).cpu().numpy()
                   for s in range(0, len(images), 1024)]
            return np.concatenate(out)

        fer_share = real_teacher_weights(y, own_pred(self.val_clean), self.real_val_logits.argmax(1))
        photo_share = fer_share
        if self.photo_val:
            labels, own, real = [], [], []
            for (_, hx, hy, hfound), logits in zip(self.photo_val, self.real_photo_val_logits):
                found = hfound & np.all(np.isfinite(logits), axis=1)
                labels.append(hy[found])
                own.append(own_pred(t.from_numpy(hx[found]).to(self.device)))
                real.append(logits[found].argmax(1))
            photo_share = real_teacher_weights(np.concatenate(labels), np.concatenate(own), np.concatenate(real))
        if self.teacher is None:
            fer_share = photo_share = np.ones(len(EMOTIONS))
        sources = np.asarray(self.train_set.sources)
        share = np.where((sources == "photo")[:, None] | (sources == "label_free")[:, None], photo_share, fer_share)
        # label-free samples have only this teacher: their target is its own
        share[sources == "label_free"] = 1.0
        self.real_share = t.from_numpy(share.astype(np.float32)).to(self.device)
        fmt = " ".join(f"{e}={v:.2f}" for e, v in zip(EMOTIONS, fer_share))
        pfmt = " ".join(f"{e}={v:.2f}" for e, v in zip(EMOTIONS, photo_share))
        print(f"real-face teacher share per class: FER2013 {fmt}; photos {pfmt}", flush=True)
        self.log({"real_teacher_share_fer": fer_share.tolist(), "real_teacher_share_photos": photo_share.tolist()})

    def build(self) -> None:
        from fer_mask_ros.perception.classifier import load_model
        from fer_mask_ros.perception.zoo.network import MaskedFERNet, widen

        cfg, t = self.cfg, self.torch
        self.model = MaskedFERNet(tuple(cfg.widths), dropout=cfg.dropout)
        if cfg.init:
            start, _ = load_model(cfg.init)
            if tuple(start.widths) != tuple(cfg.widths):
                try:  # a wider net starts as the same function (Net2WiderNet)
                    start, narrow = widen(start, tuple(cfg.widths), seed=cfg.seed), start.widths
                except ValueError as exc:
                    raise ValueError(f"--init {cfg.init}: {exc}") from None
                print(f"--init {cfg.init}: widened {narrow} -> {tuple(cfg.widths)}", flush=True)
            self.model.load_state_dict(start.state_dict())
        self.model = self.model.to(self.device)
        self.model = self.model.to(memory_format=t.channels_last)
        self.teacher = None
        if cfg.teacher:
            teacher, _ = load_model(cfg.teacher)
            self.teacher = teacher.to(self.device).to(memory_format=t.channels_last).eval()
        self.photo_teacher = None
        if cfg.photo_teacher:
            teacher, _ = load_model(cfg.photo_teacher)
            self.photo_teacher = teacher.to(self.device).to(memory_format=t.channels_last).eval()
        if self.real_logits is not None:
            self._real_teacher_shares()
        self.opt = t.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                               weight_decay=cfg.weight_decay)
        self.steps_per_epoch = max(1, len(self.train_set) // cfg.batch_size)
        warm = self.steps_per_epoch * cfg.warmup_epochs
        if cfg.swa_start:
            warm = min(warm, self.steps_per_epoch * (cfg.swa_start - 1))
        self.swa_lr = cfg.swa_lr or cfg.lr / 2
        self.swa: Optional[Dict[str, object]] = None
        self.swa_count = 0

        floor = self.swa_lr / cfg.lr if cfg.swa_start else 0.0

        def schedule(step: int) -> float:
            # cosine from lr down to swa_lr at swa_start (or to 0 at the end), then constant swa_lr
            end_epoch = cfg.swa_start - 1 if cfg.swa_start else self.cfg.epochs
            total = self.steps_per_epoch * end_epoch
            if step < warm:
                return (step + 1) / warm
            if cfg.swa_start and step >= total:
                return floor
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        self.sched = t.optim.lr_scheduler.LambdaLR(self.opt, schedule)
        self.start_epoch = 0
        self.best_score = -1.0
        self.generator = t.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed)
        ckpt = os.path.join(cfg.output, "checkpoint.pt")
        if cfg.resume and os.path.isfile(ckpt):
            state = read_checkpoint(ckpt, self.device)
            try:
                self.model.load_state_dict(state["model"])
                self.opt.load_state_dict(state["optimizer"])
                self.sched.load_state_dict(state["scheduler"])
            except (RuntimeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"--resume: {ckpt} does not match this run's network (--widths?): "
                                 f"{str(exc).splitlines()[0][:200]}") from None
            self.start_epoch = int(state["epoch"]) + 1
            self.best_score = float(state["best_score"])
            self.swa, self.swa_count = state.get("swa"), int(state.get("swa_count", 0))
            self.generator.manual_seed(cfg.seed + self.start_epoch)
            print(f"resumed from {ckpt} at epoch {self.start_epoch}", flush=True)

    def _autocast(self):
        return self.torch.autocast(self.device.type, dtype=self.torch.bfloat16, enabled=self.use_bf16)

    def train_epoch(self, epoch: int) -> Dict[str, float]:
        import torch.nn.functional as F

        cfg, t = self.cfg, self.torch
        self.model.train()
        n = len(self.train_set)
        order = t.randperm(n, device=self.device, generator=self.generator)
        steps = self.steps_per_epoch
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, dynamic_ncols=True)
        sum_loss = sum_correct = sum_seen = 0.0
        for step in range(steps):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            b = idx.numel()
            x, use_mask, teacher_x = self._batch(idx, self.generator)
            y = self.y[idx]
            with self._autocast():
                photos = self._photo_batch(b, self.generator) if self.photos is not None else None
                logits, mask_logit, p_mask = self._forward(self.model, x, None if photos is None else photos[0])
                loss = logit_adjusted_loss(logits.float(), y, self.log_prior, cfg.logit_adjust, cfg.label_smoothing)
                if self.teacher is not None or self.real_logits is not None:
                    temp = cfg.kd_temperature
                    kd = F.kl_div(F.log_softmax(logits.float() / temp, 1), self._teacher_targets(teacher_x, idx, temp),
                                  reduction="batchmean") * temp * temp
                    loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * kd
                loss = loss + cfg.mask_loss_weight * F.binary_cross_entropy_with_logits(
                    mask_logit.float(), use_mask.float())
                if photos is not None:
                    loss = loss + cfg.mask_loss_weight * F.binary_cross_entropy_with_logits(p_mask.float(), photos[1])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            sum_loss += float(loss.detach()) * b
            sum_correct += float((logits.argmax(1) == y).sum())
            sum_seen += b
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{sum_loss / sum_seen:.3f}", acc=f"{sum_correct / sum_seen:.3f}")
        if bar is not None:
            bar.close()
        return {"train_loss": sum_loss / sum_seen, "train_acc": sum_correct / sum_seen}

    def _teacher_probs(self, x, temperature: float, teacher=None):
        """The teacher's softened class probabilities for `x`; with teacher_flip, averaged with the mirror
        images' (the flip test-time augmentation, distilled into a single forward pass)."""
        import torch.nn.functional as F

        teacher = teacher or self.teacher
        with self.torch.no_grad():
            probs = F.softmax(teacher(x)[0].float() / temperature, 1)
            if self.cfg.teacher_flip:
                mirrored = F.softmax(teacher(x.flip(3))[0].float() / temperature, 1)
                probs = (probs + mirrored) / 2
        return probs

    def _teacher_targets(self, x, idx, temperature: float):
        """Soft targets of the batch `x` (training indices `idx`): photo-source samples from the photo
        teacher when there is one, all others from the teacher; mixed class by class with the real-face
        teacher's when there is one."""
        own = self._own_teacher_targets(x, idx, temperature) if self.teacher is not None else None
        if self.real_logits is None:
            return own
        if own is None:
            own = self.torch.full((x.shape[0], len(EMOTIONS)), 1.0 / len(EMOTIONS), device=x.device)
        return mix_teacher_targets(own, self.real_logits[idx], self.real_share[idx], temperature)

    def _own_teacher_targets(self, x, idx, temperature: float):
        if self.photo_teacher is None:
            return self._teacher_probs(x, temperature)
        photo = self.is_photo[idx]
        probs = self.torch.empty((x.shape[0], len(EMOTIONS)), device=x.device)
        for chosen, teacher in ((~photo, self.teacher), (photo, self.photo_teacher)):
            if bool(chosen.any()):
                probs[chosen] = self._teacher_probs(x[chosen], temperature, teacher)
        return probs

    def _batch(self, idx, generator):
        """Training faces `idx`, each masked with probability mask_prob, augmented; the masked flags; and
        what the teacher sees (the same batch, or with teacher_sees_clean the same faces unmasked)."""
        t, cfg = self.torch, self.cfg
        b = idx.numel()
        use_mask = t.rand(b, device=self.device, generator=generator) < cfg.mask_prob
        variant = t.randint(0, cfg.mask_variants, (b,), device=self.device, generator=generator)
        raw = t.where(use_mask[:, None, None], self.x_masked[variant, idx], self.x_clean[idx])
        if cfg.lower_face_erase > 0:
            erase = ~use_mask & (t.rand(b, device=self.device, generator=generator) < cfg.lower_face_erase)
            raw = erase_lower_face(raw, lambda *s: t.rand(*s, device=self.device, generator=generator), erase,
                                   cfg.occluder_top)
            use_mask = use_mask | erase
        # with teacher_sees_clean the teacher gets the same augmentation (flip, pose, lighting, noise,
        # erasing) of the face without its mask, so the student learns from the upper face what the
        # whole face shows: a twin generator replays the draws
        state = generator.get_state() if cfg.teacher_sees_clean else None
        x = augment(raw, generator, cfg.aug_strength, cfg.camera_aug).to(memory_format=t.channels_last)
        if state is None:
            return x, use_mask, x
        twin = t.Generator(device=self.device)
        twin.set_state(state)
        clean = augment(self.x_clean[idx], twin, cfg.aug_strength, cfg.camera_aug)
        return x, use_mask, clean.to(memory_format=t.channels_last)

    def _photo_batch(self, faces: int, generator):
        """The real mask photos that go with a batch of `faces` training faces, augmented; and their flags."""
        t = self.torch
        pick = t.randint(0, len(self.photos[1]), (max(16, faces // 8),), device=self.device, generator=generator)
        return augment(self.photos[0][pick], generator).to(memory_format=t.channels_last), self.photos[1][pick]

    def _forward(self, model, x, photo_x=None):
        """A training step's forward pass: FER faces `x` and, when given, mask photos -> emotion logits, mask
        logits, photo mask logits. "joint" runs both in one batch, so BatchNorm's running statistics are those
        the emotion head trained under; "separate" gives the photos their own pass."""
        if photo_x is None:
            logits, mask_logit = model(x)
            return logits, mask_logit, None
        if self.cfg.photo_forward == "joint":
            b = x.shape[0]
            all_logits, all_masks = model(self.torch.cat([x, photo_x]).to(memory_format=self.torch.channels_last))
            return all_logits[:b], all_masks[:b], all_masks[b:]
        logits, mask_logit = model(x)
        return logits, mask_logit, model(photo_x)[1]

    def predict(self, images, model=None) -> Tuple[np.ndarray, np.ndarray]:
        t = self.torch
        model = self.model if model is None else model
        model.eval()
        probs, masks = [], []
        with t.no_grad(), self._autocast():
            for s in range(0, len(images), 1024):
                x = (images[s:s + 1024].float().unsqueeze(1) / 255.0).to(memory_format=t.channels_last)
                logits, mask_logit = model(x)
                probs.append(t.softmax(logits.float(), 1).cpu().numpy())
                masks.append(t.sigmoid(mask_logit.float()).cpu().numpy())
        return np.concatenate(probs), np.concatenate(masks)

    def validate(self, model=None) -> Dict[str, float]:
        y = self.val_y.cpu().numpy()
        p_clean, m_clean = self.predict(self.val_clean, model)
        p_masked, m_masked = self.predict(self.val_masked, model)
        out = {
            "val_acc": float((p_clean.argmax(1) == y).mean()),
            "val_masked_acc": float((p_masked.argmax(1) == y).mean()),
            "val_mask_flag_acc": float(((m_clean < 0.5).mean() + (m_masked >= 0.5).mean()) / 2),
        }
        if self.photos is not None:
            _, m_photo = self.predict(self.photos_val[0], model)
            flags = self.photos_val[1].cpu().numpy()
            out["photo_mask_acc_with"] = float((m_photo[flags == 1] >= 0.5).mean())
            out["photo_mask_acc_without"] = float((m_photo[flags == 0] < 0.5).mean())
        for (name, hx, hy, hfound), hx_masked in zip(self.photo_val, self.photo_val_masked):
            for key, crops in (("", hx), ("masked_", hx_masked)):
                pred = self.predict(self.torch.from_numpy(crops).to(self.device), model)[0].argmax(1)
                pred = np.where(hfound, pred, -1)  # no face found: wrong
                out[f"{name}_{key}bacc"] = classification_metrics(hy, pred, EMOTIONS)["balanced_accuracy"]
                out[f"{name}_{key}acc"] = float((pred == hy).mean())
        return out

    def save_checkpoint(self, epoch: int) -> None:
        t = self.torch
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict(), "epoch": epoch, "best_score": self.best_score,
                 "swa": self.swa, "swa_count": self.swa_count}
        tmp = os.path.join(self.cfg.output, "checkpoint.pt.tmp")
        t.save(state, tmp)
        os.replace(tmp, os.path.join(self.cfg.output, "checkpoint.pt"))

    def run(self) -> Dict[str, float]:
        from fer_mask_ros.perception.classifier import save_model

        cfg = self.cfg
        self.load_data()
        self.build()
        best: Dict[str, float] = {}
        started = time.time()
        epoch = self.start_epoch
        while epoch < cfg.epochs:
            t0 = time.time()
            record = {"epoch": epoch + 1, **self.train_epoch(epoch), **self.validate()}
            candidates = [(record, self.model)]
            if cfg.swa_start and epoch + 1 >= cfg.swa_start:
                self._swa_update()
                if self.swa_count >= 2:
                    averaged = self._swa_model()
                    swa_record = {"epoch": epoch + 1, "swa_epochs": self.swa_count, **self.validate(averaged)}
                    record.update({f"swa_{k}": v for k, v in swa_record.items() if k.startswith(("val", "photo"))})
                    candidates.append((swa_record, averaged))
                    save_model(self._plain_model(averaged), os.path.join(cfg.output, "swa.pt"),
                               {"config": self._config_meta(), "selected": swa_record})
            record["seconds"] = round(time.time() - t0, 1)
            # the run's first epoch carries one-time costs (GPU kernel tuning), so fit on its second
            if cfg.time_budget and epoch == min(self.start_epoch + 1, cfg.epochs - 1):
                epochs, swa_start = fit_schedule(cfg.epochs, cfg.swa_start, epoch + 1, record["seconds"],
                                                 cfg.time_budget - (time.time() - started))
                if epochs < cfg.epochs:
                    swa_moved = swa_start != cfg.swa_start and swa_start <= epochs
                    note = f", SWA from epoch {swa_start}" if swa_moved else ""
                    print(f"time budget {cfg.time_budget:.0f} s: {cfg.epochs} -> {epochs} epochs{note}", flush=True)
                    cfg.epochs, cfg.swa_start = epochs, swa_start
            for candidate, model in candidates:
                score = self.selection_score(candidate)
                if score > self.best_score:
                    self.best_score = score
                    best = dict(candidate)
                    meta = {"config": self._config_meta(), "selected": best, "device": str(self.device),
                            "train_seconds": round(time.time() - started, 1)}
                    save_model(self._plain_model(model), os.path.join(cfg.output, "best.pt"), meta)
            self.log(record)
            print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
                  flush=True)
            self.save_checkpoint(epoch)
            epoch += 1
        return best

    def selection_score(self, record: Dict[str, float]) -> float:
        """Mean of FER2013 PublicTest (unmasked, masked) and each photo source's hold-out balanced
        accuracy (unmasked, masked): a checkpoint must do well on faces from more than one dataset."""
        parts = [record["val_acc"], record["val_masked_acc"]]
        for name, *_ in self.photo_val:
            parts += [record[f"{name}_bacc"], record[f"{name}_masked_bacc"]]
        return float(np.mean(parts))

    def _config_meta(self) -> Dict[str, object]:
        return {k: v for k, v in asdict(self.cfg).items() if k != "extra"}

    def _plain_model(self, model=None):
        import copy

        model = copy.deepcopy(self.model if model is None else model).float().cpu()
        return model.to(memory_format=self.torch.contiguous_format)

    def _swa_update(self) -> None:
        """Fold the current weights into the running average (stochastic weight averaging)."""
        with self.torch.no_grad():
            current = self.model.state_dict()
            if self.swa is None:
                self.swa = {k: v.detach().float().clone() for k, v in current.items() if v.is_floating_point()}
                self.swa_count = 1
                return
            self.swa_count += 1
            for name, average in self.swa.items():
                average += (current[name].float() - average) / self.swa_count

    def _swa_model(self):
        """The averaged weights, with BatchNorm statistics re-estimated on training batches.

        The passes are a training step's, mask photos included: the mask head on real photos depends on
        statistics that include them (FER faces alone dropped the held-out with_mask flag to 75 %).
        """
        import copy

        t, cfg = self.torch, self.cfg
        model = copy.deepcopy(self.model)
        state = model.state_dict()
        state.update({k: v.to(state[k].dtype) for k, v in self.swa.items()})
        model.load_state_dict(state)
        norms = [m for m in model.modules() if isinstance(m, t.nn.modules.batchnorm._BatchNorm)]
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the passes below
        model.train()
        generator = t.Generator(device=self.device)
        generator.manual_seed(cfg.seed)
        n = min(len(self.train_set), cfg.swa_bn_images)
        order = t.randperm(len(self.train_set), device=self.device, generator=generator)[:n]
        with t.no_grad(), self._autocast():
            for s in range(0, n, cfg.batch_size):
                idx = order[s:s + cfg.batch_size]
                x = self._batch(idx, generator)[0]
                photo_x = self._photo_batch(idx.numel(), generator)[0] if self.photos is not None else None
                self._forward(model, x, photo_x)
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        return model.eval()


def _progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, leave=False, dynamic_ncols=True)


def train(cfg: TrainConfig) -> Dict[str, float]:
    return Trainer(cfg).run()


