"""The missing-driver WARN (face_detector, runtime.no_images_message) names the image topics that do exist and the
remap that would use them; the graph's own image outputs are never offered as a camera."""
from __future__ import annotations

from fer_mask_ros.ros.runtime import no_images_message

TOPIC = "/naoqi_driver/camera/front/image_raw"
PUBLISHED = [("/rosout", "rosgraph_msgs/Log"), ("/fer_mask/image_annotated", "sensor_msgs/Image"),
             ("/humans/faces/f1/cropped", "sensor_msgs/Image"), ("/humans/faces/f1/aligned", "sensor_msgs/Image"),
             ("/nao_robot/camera/front/image_raw", "sensor_msgs/Image"),
             ("/nao_robot/camera/front/image_raw/compressed", "sensor_msgs/CompressedImage"),
             ("/nao_robot/camera/front/camera_info", "sensor_msgs/CameraInfo")]


def test_names_the_camera_that_exists_and_the_remap():
    line = no_images_message("face_detector", TOPIC, 8.0, PUBLISHED)
    assert line.startswith(f"face_detector: no images on {TOPIC} for 8 s and no node publishes it - "
                           "is naoqi_driver running? ")
    assert "Image topics that exist: /nao_robot/camera/front/image_raw;" in line
    assert "nao.launch image_topic:=/nao_robot/camera/front/image_raw" in line
    assert "rosrun: image:=/nao_robot/camera/front/image_raw" in line
    for own in ("image_annotated", "cropped", "aligned", "compressed"):
        assert own not in line, line
    assert "\n" not in line


def test_compressed_transport_offers_compressed_topics():
    line = no_images_message("face_detector", "/fer_mask/camera/front/image_raw/compressed", 8.0, PUBLISHED)
    assert "is the camera node (nao_camera, usb_camera) running?" in line
    assert "Image topics that exist: /nao_robot/camera/front/image_raw/compressed;" in line
    assert "image_topic:=/nao_robot/camera/front/image_raw " in line  # nao.launch adds /compressed itself


def test_no_camera_at_all_says_so():
    line = no_images_message("face_detector", TOPIC, 8.0, PUBLISHED[:4])
    assert line.endswith("(no sensor_msgs/Image topic is published; rostopic list)"), line
    assert "image_topic:=" not in line
    many = [(f"/cam{k}/image_raw", "sensor_msgs/Image") for k in range(9)]
    line = no_images_message("face_detector", TOPIC, 8.0, many)
    assert "/cam0/image_raw, /cam1/image_raw" in line and "and 3 more" in line and "/cam8/" not in line
