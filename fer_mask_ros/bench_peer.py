"""Peer timing: the PyPI `fer` package (default OpenCV Haar cascade + mini-Xception, Keras/TensorFlow) on the
PNG frames of one folder. Run with the peer venv's python (make bench-peer creates .venv-peer), never
imported by fer_mask_ros:

    .venv-peer/bin/python fer_mask_ros/bench_peer.py FOLDER [--repeats 2]

Prints one JSON line: {"fps": frames per second of detect_emotions, "frames": n, "faces_per_frame": ...}.
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
    from fer import FER

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
    print(json.dumps({"fps": n / dt, "frames": n, "faces_per_frame": faces / n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
