"""REP-155 on ROS 2: the demo graph with the hri_bridge publishes tracked ids, roi, cropped, landmarks and expression
for the clip's faces, each with the source image's header. Skips where hri_msgs for ROS 2 is not built (it comes
from HRI_MSGS2_SRC, ../shared/ros4hri/hri_msgs-ros2 by default, which a clean clone does not have)."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("hri_msgs.msg", reason="hri_msgs for ROS 2 is not built (make setup-ros2 HRI_MSGS2_SRC=...)")

DEADLINE_S = 240.0


def test_rep155_topics(ros):
    from hri_msgs.msg import Expression, FacialLandmarks, IdsList, NormalizedRegionOfInterest2D
    from sensor_msgs.msg import Image

    from fer_mask_ros.labels import EMOTIONS
    from fer_mask_ros.ros2.demo import DemoGraph
    from fer_mask_ros.ros2.runtime import image_qos, stamp_key

    lock = threading.Lock()
    got = {"ids": [], "images": set()}
    first_id = threading.Event()
    per_face = {}
    done = threading.Event()
    kinds = {"roi": NormalizedRegionOfInterest2D, "cropped": Image, "landmarks": FacialLandmarks,
             "expression": Expression}

    def on_ids(msg):
        with lock:
            got["ids"].append(msg)
        if msg.ids:
            first_id.set()

    def on_image(msg):
        with lock:
            got["images"].add(stamp_key(msg.header.stamp))

    def keep(kind):
        def cb(msg):
            with lock:
                per_face.setdefault(kind, msg)
                if len(per_face) == len(kinds):
                    done.set()
        return cb

    graph = DemoGraph(port=0, echo=False, rep155=True, hri_prefix="/humans")
    try:
        watcher = ros.create_node("test_rep155_watcher", namespace="fer_mask")
        watcher.create_subscription(IdsList, "/humans/faces/tracked", on_ids, 50)
        watcher.create_subscription(Image, "camera/front/image_raw", on_image, image_qos(50))
        graph.add_node(watcher)
        assert first_id.wait(DEADLINE_S), "no face id on /humans/faces/tracked"
        with lock:
            fid = next(m.ids[0] for m in got["ids"] if m.ids)
        assert fid.startswith("f") and fid[1:].isdigit(), fid
        for kind, msg_type in kinds.items():
            qos = image_qos(5) if kind == "cropped" else 5
            watcher.create_subscription(msg_type, f"/humans/faces/{fid}/{kind}", keep(kind), qos)
        assert done.wait(DEADLINE_S), f"face {fid}: only {sorted(per_face)} of {sorted(kinds)} came"
    finally:
        graph.stop()

    with lock:
        images = set(got["images"])
    for kind, msg in per_face.items():
        assert stamp_key(msg.header.stamp) in images, f"{kind}: header is not an image's"
    roi, crop, lm, ex = per_face["roi"], per_face["cropped"], per_face["landmarks"], per_face["expression"]
    assert 0.0 <= roi.xmin < roi.xmax <= 1.0 and 0.0 <= roi.ymin < roi.ymax <= 1.0 and 0 < roi.c <= 1
    assert (crop.width, crop.height, crop.encoding) == (128, 128, "bgr8")
    assert (lm.width, lm.height) == (320, 240) and len(lm.landmarks) == 70
    assert sum(1 for p in lm.landmarks if p.c > 0) == 5
    rep155_names = {"neutral", "angry", "sad", "happy", "surprised", "disgusted", "scared"}
    assert ex.expression in rep155_names and len(EMOTIONS) == 7
    assert -1 <= ex.valence <= 1 and -1 <= ex.arousal <= 1 and 0 < ex.confidence <= 1
