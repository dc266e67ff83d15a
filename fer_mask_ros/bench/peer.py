"""Peer timing: the PyPI `fer` package (default OpenCV Haar cascade + mini-Xception, Keras/TensorFlow) on the
PNG frames of one folder. Run with the peer venv's python (make bench-peer creates .venv-peer), never
imported by fer_mask_ros:

    .venv-peer/bin/python fer_mask_ros/bench/peer.py FOLDER [--repeats 2]

Prints one JSON line: {"fps": frames per second of detect_emotions (its own Haar detector), "frames": n,
"faces_per_frame": faces Haar found, "fps_given_boxes": frames per second when given the true face boxes
(FOLDER/boxes.json, one list of [x, y, w, h] per PNG) so that mini-Xception classifies every face}.
Haar finds few masked faces (it looks for the nose and mouth), so "fps" alone flatters the peer.
TensorFlow is limited to 2 threads (intra op) and 1 (inter op), like our nodes on a 2-core machine.
"""
import json
import os
import sys
import time


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    folder = sys.argv[1]
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 2
    import cv2
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        from fer import FER
    except ImportError:  # fer >= 25 exports FER from fer.fer only
        from fer.fer import FER

    frames = [cv2.imread(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".png")]
    frames = [f for f in frames if f is not None][:20]
    if not frames:
        print(json.dumps({"error": f"no PNG frames in {folder}"}))
        return 2
    detector = FER()  # default: Haar cascade face detector, mini-Xception emotion model
    for f in frames[:2]:
        detector.detect_emotions(f)  # warm-up
    faces = 0
    t0 = time.perf_counter()
    for _ in range(repeats):
        for f in frames:
            faces += len(detector.detect_emotions(f))
    dt = time.perf_counter() - t0
    n = repeats * len(frames)
    result = {"fps": n / dt, "frames": n, "faces_per_frame": faces / n, "fps_given_boxes": None}
    boxes_file = os.path.join(folder, "boxes.json")
    if os.path.isfile(boxes_file):
        with open(boxes_file) as f:
            boxes = [[tuple(b) for b in frame_boxes] for frame_boxes in json.load(f)][: len(frames)]
        t0 = time.perf_counter()
        for _ in range(repeats):
            for f, b in zip(frames, boxes):
                detector.detect_emotions(f, face_rectangles=b)
        result["fps_given_boxes"] = repeats * len(boxes) / (time.perf_counter() - t0)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
