"""Check models/faceapi_expression.onnx against face-api.js's original tfjs weights (manifest + uint8 shard).

    PYTHONPATH=. python tools/check_faceapi_weights.py ../shared/models/faceapi-original models/faceapi_expression.onnx

Each tfjs tensor is dequantised (q * scale + min), put in ONNX layout (HWIO -> OIHW; depthwise HWC1 -> C1HW;
fc [in, out] -> either orientation) and must equal one ONNX initializer (max abs difference < 1e-6).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def tfjs_tensors(folder):
    with open(os.path.join(folder, "face_expression_model-weights_manifest.json")) as f:
        manifest = json.load(f)
    out = {}
    for group in manifest:
        blob = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"]))
            q = w.get("quantization")
            if q:
                raw = np.frombuffer(blob, np.uint8, n, offset).astype(np.float64)
                offset += n
                value = raw * q["scale"] + q["min"]
            else:
                value = np.frombuffer(blob, np.float32, n, offset).astype(np.float64)
                offset += 4 * n
            out[w["name"]] = value.reshape(w["shape"])
    return out


def layouts(v):
    if v.ndim == 4:
        yield v.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        yield v.transpose(2, 3, 0, 1)  # depthwise HWC1 -> C1HW
    elif v.ndim == 2:
        yield v
        yield v.T
    else:
        yield v


def main(argv=None) -> int:
    folder, onnx_file = (argv or sys.argv[1:])[:2]
    inits = [numpy_helper.to_array(i).astype(np.float64) for i in onnx.load(onnx_file).graph.initializer]
    matched, worst = 0, 0.0
    tensors = tfjs_tensors(folder)
    for name, v in tensors.items():
        best = min((np.abs(a - init).max() for a in layouts(v) for init in inits if init.shape == a.shape),
                   default=np.inf)
        worst = max(worst, best)
        matched += best < 1e-6
        if best >= 1e-6:
            print(f"no ONNX initializer equals {name} {list(v.shape)} (closest differs by {best:.3g})")
    print(f"{matched} of {len(tensors)} original tensors found in {onnx_file}; largest difference {worst:.2g}")
    return 0 if matched == len(tensors) else 1


if __name__ == "__main__":
    sys.exit(main())
