"""The one torchvision stand-in of the tools (torchvision is not a project dependency).

onnx2torch (finetune_detector.py) imports torchvision for NMS / RoIAlign, which CenterFace never uses;
facenet_pytorch's MTCNN (eval_detector.py) needs batched_nms and to_tensor. This stub gives both,
with NMS from fer_mask_ros.perception.detection. A real torchvision, when installed, is left alone.
"""
from __future__ import annotations

import sys
import types

import numpy as np


def stub_torchvision() -> None:
    if "torchvision" in sys.modules:
        return
    try:
        import torchvision  # noqa: F401
        return
    except ImportError:
        pass
    import torch

    from fer_mask_ros.perception.detection import nms

    def batched_nms(boxes, scores, idxs, iou_threshold):
        if boxes.numel() == 0:
            return torch.empty((0,), dtype=torch.int64)
        offs = idxs.to(boxes) * (boxes.max() + 1)
        b = (boxes + offs[:, None]).detach().cpu().numpy()
        keep = nms(b, scores.detach().cpu().numpy(), float(iou_threshold))
        return torch.as_tensor(keep, dtype=torch.int64)

    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops.roi_align = None
    ops.nms = None
    boxes_mod = types.ModuleType("torchvision.ops.boxes")
    boxes_mod.batched_nms = batched_nms
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.to_tensor = lambda a: torch.as_tensor(np.asarray(a)).permute(2, 0, 1).float() / 255.0
    tv.ops, ops.boxes, tv.transforms, transforms.functional = ops, boxes_mod, transforms, functional
    sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.boxes": boxes_mod,
                        "torchvision.transforms": transforms, "torchvision.transforms.functional": functional})
