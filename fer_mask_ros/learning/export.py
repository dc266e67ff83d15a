"""Deployment copies of a model file: the ONNX export (fp32) and its int8 quantisation, both stamped with
the .pt's hash so that perception.classifier uses a copy only when it was made from that .pt.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from fer_mask_ros.perception.alignment import INPUT_SIZE
from fer_mask_ros.perception.classifier import (
    SOURCE_STAMP,
    TEMPERATURES,
    file_sha256,
    int8_path_for,
    load_model,
    onnx_path_for,
    parse_temperatures,
)


def _stamp_source(onnx_path: str, model_path: str) -> None:
    """Stamp an ONNX copy with the .pt's hash and carry over the .pt's fitted temperatures."""
    import json

    import onnx

    _, meta = load_model(model_path)
    stamps = {SOURCE_STAMP: file_sha256(model_path)}
    if meta.get(TEMPERATURES):
        parse_temperatures(meta[TEMPERATURES])  # refuse a malformed value before it ships
        stamps[TEMPERATURES] = json.dumps(meta[TEMPERATURES], sort_keys=True)
    proto = onnx.load(onnx_path)
    for entry in list(proto.metadata_props):
        if entry.key in (SOURCE_STAMP, TEMPERATURES):
            proto.metadata_props.remove(entry)
    for key, value in stamps.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, onnx_path)


def export_onnx(model_path: str, onnx_path: Optional[str] = None) -> str:
    """Write the ONNX copy of a model file, stamped with the .pt's hash."""
    import torch

    model, _ = load_model(model_path)
    onnx_path = onnx_path or onnx_path_for(model_path)
    dummy = torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(
        model, dummy, onnx_path, input_names=["image"], output_names=["emotion_logits", "mask_logit"],
        dynamic_axes={"image": {0: "batch"}, "emotion_logits": {0: "batch"}, "mask_logit": {0: "batch"}},
        opset_version=17, dynamo=False,
    )
    _stamp_source(onnx_path, model_path)
    return onnx_path


def quantize_onnx(model_path: str, calibration: np.ndarray, out_path: Optional[str] = None) -> str:
    """Write the int8 copy of a model file: its convolutions (all but the first, which sees raw
    pixels) in int8 with per-channel weights, activation ranges calibrated on `calibration`
    ((N, 48, 48) uint8 grey face crops, a few hundred clean and masked ones). Stamped with the
    .pt's hash like the fp32 ONNX copy, which is exported first when missing or stale."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    calibration = np.asarray(calibration)
    if calibration.ndim != 3 or calibration.shape[1:] != (INPUT_SIZE, INPUT_SIZE) or len(calibration) == 0:
        raise ValueError(f"calibration needs (N, {INPUT_SIZE}, {INPUT_SIZE}) crops, got {calibration.shape}")
    fp32 = onnx_path_for(model_path)
    proto = _load_onnx(fp32)
    source = None if proto is None else next((e.value for e in proto.metadata_props if e.key == SOURCE_STAMP), None)
    if source != file_sha256(model_path):
        export_onnx(model_path, fp32)
        proto = onnx.load(fp32)
    out_path = out_path or int8_path_for(model_path)
    first_conv = next(n.name for n in proto.graph.node if n.op_type == "Conv")

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.start = 0

        def get_next(self):
            if self.start >= len(calibration):
                return None
            batch = calibration[self.start:self.start + 32].astype(np.float32)[:, None] / 255.0
            self.start += 32
            return {"image": batch}

    quantize_static(fp32, out_path, Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                    nodes_to_exclude=[first_conv])
    _stamp_source(out_path, model_path)
    return out_path


def _load_onnx(onnx_path: str):
    """The ONNX model at `onnx_path`, or None when it is missing or unreadable."""
    import onnx

    try:
        return onnx.load(onnx_path)
    except Exception:
        return None
