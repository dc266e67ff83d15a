"""The PyPI `fer` peer (Haar cascade + mini-Xception, TensorFlow) on the same images as `evaluate`.

Run with the peer venv's python (make bench-peer builds .venv-peer); never imported by fer_mask_ros:

    .venv-peer/bin/python PATH/TO/peer_eval.py MANIFEST.json OUT.json

MANIFEST: {"items": [{"path": "...", "crop": true|false}, ...]}. A crop (an aligned 48x48 face) is
classified whole, as given face rectangle; a photo goes through fer's own face detector and its
largest face is taken. OUT: {"probs": [[7 floats in fer_mask_ros order] or null when no face], ...}.
"""
import json
import os
import sys

OUR_ORDER = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    manifest_path, out_path = sys.argv[1], sys.argv[2]
    import cv2
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        from fer import FER
    except ImportError:  # fer >= 25 exports FER from fer.fer only
        from fer.fer import FER

    with open(manifest_path) as handle:
        items = json.load(handle)["items"]
    detector = FER()
    probs, no_face = [], 0
    for item in items:
        image = cv2.imread(item["path"], cv2.IMREAD_COLOR)
        if image is None:
            probs.append(None)
            no_face += 1
            continue
        h, w = image.shape[:2]
        faces = detector.detect_emotions(image, face_rectangles=[(0, 0, w, h)] if item.get("crop") else None)
        if not faces:
            probs.append(None)
            no_face += 1
            continue
        best = max(faces, key=lambda f: f["box"][2] * f["box"][3])
        probs.append([float(best["emotions"].get(name, 0.0)) for name in OUR_ORDER])
    with open(out_path, "w") as handle:
        json.dump({"probs": probs, "no_face": no_face}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
