"""fer_mask_ros_interfaces is generated from the ROS 1 msg/ and srv/ files (no second copy): the rewrite of ROS 1
builtins, the generated package, and the built package's fields equal the .msg files'."""
from __future__ import annotations

from pathlib import Path

from fer_mask_ros.ros2.interfaces import PACKAGE, generate_package, ros2_definition

REPO = Path(__file__).resolve().parents[2]


def test_ros1_builtins_are_rewritten():
    text = "Header header\ntime stamp\nduration[] waits\n# Header in a comment\nstd_msgs/Header h2\nuint8 x\n"
    assert ros2_definition(text).splitlines() == [
        "std_msgs/Header header", "builtin_interfaces/Time stamp", "builtin_interfaces/Duration[] waits",
        "# Header in a comment", "std_msgs/Header h2", "uint8 x"]


def test_generated_package_lists_every_file(tmp_path):
    pkg = generate_package(tmp_path)
    assert pkg.name == PACKAGE == "fer_mask_ros_interfaces"
    cmake = (pkg / "CMakeLists.txt").read_text()
    for kind in ("msg", "srv"):
        names = sorted(p.name for p in (REPO / kind).glob(f"*.{kind}"))
        assert names and sorted(p.name for p in (pkg / kind).iterdir()) == names
        for name in names:
            assert f'"{kind}/{name}"' in cmake
    assert "DEPENDENCIES sensor_msgs std_msgs" in cmake
    assert "<member_of_group>rosidl_interface_packages</member_of_group>" in (pkg / "package.xml").read_text()


def test_built_fields_follow_the_msg_files():
    from fer_mask_ros_interfaces.msg import EmotionStamped, Face, FaceArray

    for cls, name in ((EmotionStamped, "EmotionStamped"), (Face, "Face"), (FaceArray, "FaceArray")):
        lines = [line.split("#")[0].split() for line in (REPO / "msg" / f"{name}.msg").read_text().splitlines()]
        fields = [parts[1] for parts in lines if len(parts) == 2 and "=" not in parts[1]]
        assert list(cls.get_fields_and_field_types()) == fields, name
