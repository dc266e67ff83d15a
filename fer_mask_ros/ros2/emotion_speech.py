"""emotion_speech on ROS 2: EmotionStamped -> what NAO says (interaction.policy.SpeechPolicy decides what and when).

    python -m fer_mask_ros.ros2.emotion_speech --ros-args -r __ns:=/fer_mask -p backend:=topic

Subscribes emotions; publishes said (std_msgs/msg/String, every sentence) and, with backend `topic`, speech_topic
(std_msgs/msg/String, relative: naoqi_driver2 speaks /speech); /diagnostics. Service describe_face. Backends: qi
(NAO text to speech; nao_ip, nao_port, nao_url), topic, espeak, log. Parameters: config/emotion_speech.yaml; the
policy mapping is a YAML string here, e.g. -p policy:="{cooldown_s: 8.0}".
"""
from __future__ import annotations

import threading
from typing import Any

from fer_mask_ros_interfaces.msg import EmotionStamped
from fer_mask_ros_interfaces.srv import DescribeFace
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String

from fer_mask_ros.ros2.nao_camera import nao_url
from fer_mask_ros.ros2.runtime import Diagnostics, NodeStartError, Params, exit_now, run_node, stamp_to_sec


class TopicBackend:
    """naoqi_driver(2) style: std_msgs/msg/String on a topic the driver speaks."""

    name = "topic"

    def __init__(self, node: Node, topic: str):
        self.pub = node.create_publisher(String, topic, 5)

    def say(self, text: str) -> bool:
        self.pub.publish(String(data=text))
        return True

    def state(self) -> str:
        return f"{self.pub.get_subscription_count()} subscriber(s)"

    def close(self) -> None:
        pass


class EmotionSpeechNode(Node):
    def __init__(self, **kwargs: Any):
        super().__init__("emotion_speech", **kwargs)
        self.params = p = Params(self, "emotion_speech")
        from fer_mask_ros.config import CONFIG_DIR  # noqa: PLC0415
        from fer_mask_ros.interaction import policy as speech  # noqa: PLC0415
        from fer_mask_ros.robot.say import SAY_BACKENDS, make_backend  # noqa: PLC0415

        self.backend_name = str(p.get("backend"))
        if self.backend_name not in SAY_BACKENDS:
            raise NodeStartError(f"emotion_speech: unknown backend {self.backend_name!r}; "
                                 f"use one of {', '.join(SAY_BACKENDS)}")
        try:
            self.language = speech.normalise_language(str(p.get("language")))
            book_path = str(p.get("sentences")) or str(CONFIG_DIR / "sentences" / "default.yaml")
            self.book = speech.SentenceBook.load(book_path) if (str(p.get("sentences")) or (
                CONFIG_DIR / "sentences" / "default.yaml").is_file()) else speech.SentenceBook.builtin()
            policy_kw = dict(p.get("policy") or {})
            policy_kw.setdefault("window_s", float(p.get("window_s")))
            self.policy = speech.SpeechPolicy(language=self.language, sentences=self.book, **policy_kw)
        except (TypeError, ValueError) as exc:
            raise NodeStartError(f"emotion_speech: {exc}") from None
        self.connection = self.leds = None
        try:
            if self.backend_name == "topic":
                self.backend = TopicBackend(self, str(p.get("speech_topic")))
            elif self.backend_name == "qi":
                from fer_mask_ros.robot.connection import NaoConnection  # noqa: PLC0415
                from fer_mask_ros.robot.speech import NaoLeds  # noqa: PLC0415

                self.connection = NaoConnection(nao_url(p))
                self.connection.start(wait=float(p.get("connect_wait_s", 5.0)))
                if bool(p.get("leds")):
                    self.leds = NaoLeds(self.connection)
                self.backend = make_backend("qi", connection=self.connection, language=self.language,
                                            service=str(p.get("speech_service")))
            else:
                self.backend = make_backend(self.backend_name, language=self.language)
        except Exception as exc:
            raise NodeStartError(f"emotion_speech: cannot start the {self.backend_name} backend: {exc}") from None
        self.received = self.bad_input = self.tick_errors = 0
        self.said = []
        self._lock = threading.Lock()
        self.pub_said = self.create_publisher(String, "said", 10)
        group = MutuallyExclusiveCallbackGroup()  # the policy is used from one callback at a time
        self.create_subscription(EmotionStamped, "emotions", self.on_emotion, 50, callback_group=group)
        self.create_service(DescribeFace, "describe_face", self.describe_face, callback_group=group)
        self.create_timer(float(p.get("period_s")), self.tick, callback_group=group)
        Diagnostics(self, self.diag_fields, self.diag_level)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_emotion(self, msg: Any) -> None:
        self.received += 1
        try:
            self.policy.observe(msg.face_id, msg.emotion, float(msg.confidence), bool(msg.masked),
                                stamp_to_sec(msg.header.stamp), now=self.now())
        except (TypeError, ValueError) as exc:
            self.bad_input += 1
            self.get_logger().warn(f"emotion_speech: skipped a bad emotion ({self.bad_input} in all): {exc}",
                                   throttle_duration_sec=5.0)

    def tick(self) -> None:
        try:
            decision = self.policy.decide_detail(self.now())
            if decision is not None:
                self.say(decision)
        except Exception as exc:  # the timer never dies
            self.tick_errors += 1
            self.get_logger().error(f"emotion_speech: policy tick failed: {exc}", throttle_duration_sec=5.0)

    def say(self, decision: Any) -> None:
        text = decision.text
        self.get_logger().info(f"emotion_speech: saying {text!r}")
        self.said.append(text)
        del self.said[:-100]
        self.pub_said.publish(String(data=text))
        try:
            self.backend.say(text)
        except Exception as exc:
            self.get_logger().warn(f"emotion_speech: {self.backend_name} backend failed: {exc}",
                                   throttle_duration_sec=5.0)
        if self.leds is not None:
            self.leds.show_emotion(decision.emotion)

    def describe_face(self, request: Any, response: Any) -> Any:
        face_id = int(request.face_id) or None
        decision = self.policy.describe(self.now(), face_id)
        if decision is None:
            what = f"face {face_id} not" if face_id else "no face"
            response.message = f"{what} seen in the last {self.policy.window_s:g} s"
            response.face_id = face_id or 0
            return response
        self.say(decision)
        response.spoken, response.text, response.emotion = True, decision.text, decision.emotion
        response.masked, response.face_id = bool(decision.masked), int(decision.face_id)
        return response

    def diag_fields(self):
        d = {"backend": self.backend_name, "language": self.language, "emotions_received": self.received,
             "sentences": len(self.said), "last_sentence": self.said[-1] if self.said else "",
             "bad_input": self.bad_input, "errors": self.tick_errors}
        if self.connection is not None:
            d.update({"nao_" + k: v for k, v in self.connection.diagnostics().items()})
        return d

    def diag_level(self):
        if self.connection is not None and not self.connection.connected:
            return 2, f"NAO {self.connection.state}: {self.connection.last_error or self.connection.url}"
        if self.tick_errors:
            return 2, f"speech policy failed {self.tick_errors} time(s)"
        return 0, "ok"

    def close(self) -> None:
        for obj in (self.backend, self.connection):
            close = getattr(obj, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    pass


def main(argv=None) -> int:
    return run_node(EmotionSpeechNode, "emotion_speech", argv)


if __name__ == "__main__":
    exit_now(main())  # qi: no native teardown at exit
