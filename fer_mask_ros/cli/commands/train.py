"""`train`: train the masked-face expression model on FER2013 (Training split, selected on PublicTest)."""
from __future__ import annotations

import argparse
import os

from fer_mask_ros.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="FER2013: fer2013.csv(.gz) or the train/test image folders")
    parser.add_argument("--output", default="runs/train", help="run folder: best.pt, checkpoint.pt, log.jsonl")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.1, help="peak SGD learning rate (cosine schedule)")
    parser.add_argument("--widths", default="24,48,96,192", help="channel widths of the four stages")
    parser.add_argument("--mask-variants", type=int, default=4, help="synthetic masks drawn per training image")
    parser.add_argument("--mask-prob", type=float, default=0.5, help="chance a sample is shown masked")
    parser.add_argument("--aug-strength", type=float, default=1.0,
                        help="scale of the geometric, noise and erasing augmentation (0 = flips only)")
    parser.add_argument("--mask-photos", help="folder with with_mask/ and without_mask/ real photos for the mask head")
    parser.add_argument("--photo-forward", choices=("joint", "separate"), default="joint",
                        help="joint: the mask photos share the FER batch's forward pass, so BatchNorm statistics "
                             "match between training and use; separate: their own pass (how phases 1-5 trained)")
    parser.add_argument("--teacher", help="a trained model file to distil from")
    parser.add_argument("--teacher-flip", action="store_true",
                        help="distil the teacher's flip test-time augmentation: its target averages the face and "
                             "its mirror image")
    parser.add_argument("--photo-teacher", metavar="MODEL",
                        help="teacher of the --photo-source samples (default: --teacher), e.g. a model fine-tuned on "
                             "them while --teacher is the FER2013 specialist")
    parser.add_argument("--init", help="start from this model file's weights (a second, shorter schedule)")
    parser.add_argument("--kd-alpha", type=float, default=0.6,
                        help="weight of the teacher's soft targets against the labels (default 0.6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes drawing masks")
    parser.add_argument("--limit", type=int, default=0, help="use only N training images (smoke tests)")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    parser.add_argument("--time-budget", type=float, default=0.0,
                        help="seconds; after the second epoch, shrink the epoch count (and a later --swa-start "
                             "with it) so training ends in time")
    parser.add_argument("--swa-start", type=int, default=0,
                        help="from this epoch on, hold the LR at --swa-lr and average the weights "
                             "(stochastic weight averaging; the average competes for best.pt); 0 = off")
    parser.add_argument("--swa-lr", type=float, default=0.0, help="constant LR while averaging (default: half of --lr)")
    parser.add_argument("--photo-source", action="append", default=[], metavar="DIR",
                        help="a labelled photo folder <DIR>/<label>/* (e.g. expressions-lfw): its faces are cut by the "
                             "live detector and aligned crop; a fixed hash split by person keeps ~30%% out of "
                             "training for model selection (repeatable)")
    parser.add_argument("--photo-repeat", type=int, default=3, help="copies of each photo-source crop per epoch")
    parser.add_argument("--logit-adjust", type=float, default=0.0,
                        help="tau of the logit-adjusted loss against class imbalance (1.0 = full; 0 = off)")
    parser.add_argument("--camera-aug", type=float, default=0.0,
                        help="strength of camera-like augmentation: gamma, lighting ramps, blur (0 = off)")
    parser.add_argument("--lower-face-erase", type=float, default=0.0,
                        help="chance an unmasked face gets a random lower-face occluder (trained as masked)")
    parser.add_argument("--occluder-top", default="0.5,0.65", metavar="LOW,HIGH",
                        help="where the lower-face occluder's top edge lies, in crop heights (eyes near 0.4); "
                             "0.42,0.65 includes masks pulled up to the nose bridge")
    parser.add_argument("--real-teacher", metavar="ONNX",
                        help="the real-face teacher (the RAF-DB MobileFaceNet ONNX file): its outputs on each training "
                             "face, aligned its own way and unmasked, are mixed class by class with --teacher's, and "
                             "the unmasked --mask-photos of the training split join as label-free samples")
    parser.add_argument("--teacher-sees-clean", action="store_true",
                        help="the teacher's targets for a masked face come from the same face unmasked, so the "
                             "student learns from the upper face what the whole face shows")
    parser.add_argument("--real-mask-transfer", type=float, default=0.0,
                        help="share of masked training faces whose lower face comes from a real masked photo's "
                             "aligned crop (--mask-photos, training split) instead of a drawn mask")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from fer_mask_ros.errors import DatasetError
    from fer_mask_ros.learning.training import TrainConfig, train

    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        raise CommandError(f"--widths must be comma-separated integers, got {args.widths!r}") from None
    if len(widths) < 2:
        raise CommandError("--widths needs at least two stages")
    if not 0.0 <= args.aug_strength <= 2.0:
        raise CommandError(f"--aug-strength must be between 0 and 2, got {args.aug_strength}")
    try:
        occluder_top = tuple(float(v) for v in args.occluder_top.split(","))
    except ValueError:
        raise CommandError(f"--occluder-top must be LOW,HIGH, got {args.occluder_top!r}") from None
    if len(occluder_top) != 2:  # the range itself is the Trainer's check
        raise CommandError(f"--occluder-top must be LOW,HIGH, got {args.occluder_top!r}")
    if args.swa_start < 0 or args.swa_lr < 0:
        raise CommandError("--swa-start and --swa-lr must not be negative")
    if args.resume and not os.path.isfile(os.path.join(args.output, "checkpoint.pt")):
        raise CommandError(f"--resume: no checkpoint at {os.path.join(args.output, 'checkpoint.pt')}")
    if args.resume:  # before the dataset is read: a refused checkpoint is one line, at once
        from fer_mask_ros.learning.training import read_checkpoint

        try:
            read_checkpoint(os.path.join(args.output, "checkpoint.pt"))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    cfg = TrainConfig(
        data=args.data, output=args.output, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        widths=widths, mask_variants=args.mask_variants, mask_prob=args.mask_prob, aug_strength=args.aug_strength,
        mask_photos=args.mask_photos, photo_forward=args.photo_forward,
        teacher=args.teacher, teacher_flip=args.teacher_flip, photo_teacher=args.photo_teacher, init=args.init,
        kd_alpha=args.kd_alpha, seed=args.seed,
        device=args.device, workers=args.workers,
        limit=args.limit, resume=args.resume, time_budget=args.time_budget, progress=not args.no_progress,
        swa_start=args.swa_start, swa_lr=args.swa_lr, photo_sources=tuple(args.photo_source),
        photo_repeat=args.photo_repeat, logit_adjust=args.logit_adjust, camera_aug=args.camera_aug,
        lower_face_erase=args.lower_face_erase, occluder_top=occluder_top,
        teacher_sees_clean=args.teacher_sees_clean, real_teacher=args.real_teacher,
        real_mask_transfer=args.real_mask_transfer,
    )
    try:
        best = train(cfg)
    except (DatasetError, FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    print(f"best: {best}")
    print(f"model: {os.path.join(args.output, 'best.pt')}")
    return 0
