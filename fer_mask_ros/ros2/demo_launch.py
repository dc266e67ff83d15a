"""The demo graph for users who have ROS 2's launch / launch_ros (UNTESTED here: the PyPI wheels carry neither).

    ros2 launch <path to fer_mask_ros>/fer_mask_ros/ros2/demo_launch.py            (a simulated NAO, the clip)
    ros2 launch .../demo_launch.py fake_nao:=false nao_ip:=192.168.1.10        (a real NAO)

Each node is a process (`python -m fer_mask_ros.ros2.<node>`) in namespace `ns`, with the ROS 1 graph's topic
names (camera/front/image_raw, faces, emotions, emotion_array, said). Parameters not given here take
config/<node>.yaml's defaults, declared by the node itself. Tested equivalent: `python -m fer_mask_ros ros2 demo`.
"""
from __future__ import annotations

import sys


def generate_launch_description():
    from launch.actions import DeclareLaunchArgument, ExecuteProcess  # noqa: PLC0415
    from launch.conditions import IfCondition  # noqa: PLC0415
    from launch.substitutions import LaunchConfiguration as Arg  # noqa: PLC0415

    from launch import LaunchDescription  # noqa: PLC0415

    args = [DeclareLaunchArgument("ns", default_value="fer_mask"),
            DeclareLaunchArgument("fake_nao", default_value="true"),
            DeclareLaunchArgument("nao_ip", default_value="127.0.0.1"),
            DeclareLaunchArgument("nao_port", default_value="9559"),
            DeclareLaunchArgument("fps", default_value="10"),
            DeclareLaunchArgument("speech_backend", default_value="qi"),
            DeclareLaunchArgument("rep155", default_value="false")]
    image = ["-r", "image:=camera/front/image_raw"]

    def node(module, *extra, condition=None):
        cmd = [sys.executable, "-m", f"fer_mask_ros.ros2.{module}", "--ros-args", "-r", ["__ns:=/", Arg("ns")],
               *extra]
        return ExecuteProcess(cmd=cmd, output="screen", condition=condition, respawn=module != "fake_nao",
                              respawn_delay=2.0)

    nao = ["-p", ["nao_ip:=", Arg("nao_ip")], "-p", ["nao_port:=", Arg("nao_port")]]
    return LaunchDescription(args + [
        node("fake_nao", "-p", ["port:=", Arg("nao_port")], "-p", ["fps:=", Arg("fps"), ".0"],
             condition=IfCondition(Arg("fake_nao"))),
        node("nao_camera", *nao, "-p", ["fps:=", Arg("fps")], "-r", "image_raw:=camera/front/image_raw",
             "-r", "camera_info:=camera/front/camera_info"),
        node("face_detector", *image),
        node("emotion_classifier", *image),
        node("emotion_speech", *nao, "-p", ["backend:=", Arg("speech_backend")]),
        node("hri_bridge", *image, condition=IfCondition(Arg("rep155"))),
    ])
