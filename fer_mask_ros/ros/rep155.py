"""ROS4HRI (REP-155) adapter: the graph's tracked faces and smoothed expressions as /humans/faces/... topics.

One frame = one EmotionArray (the classifier's smoothed output for one image, also when empty) with the
FaceArray and the image of the same header. For each tracked face id N (REP-155 id "f<N>"):

    <prefix>/faces/tracked            hri_msgs/IdsList                   ids of the faces tracked now
    <prefix>/faces/<id>/roi           hri_msgs/NormalizedRegionOfInterest2D
    <prefix>/faces/<id>/cropped       sensor_msgs/Image (bgr8, width x height, zero-padded; only when subscribed)
    <prefix>/faces/<id>/landmarks     hri_msgs/FacialLandmarks           5 of the 70 points
    <prefix>/faces/<id>/expression    hri_msgs/Expression                expression, valence, arousal, confidence
    <prefix>/faces/<id>/masked        std_msgs/Bool                      ours: REP-155 has no field for a mask

Every header is the source image's. A face's publishers are made when it first appears (before the
IdsList that names it) and unregistered when it has not been seen for `forget_after_s` of image time,
or when no frame came for that long (the camera stopped), so no publisher outlives its face.
The expression is the `emotions` topic's own top class and confidence (never recomputed), so the two agree.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

from fer_mask_ros.interaction.affect import affect
from fer_mask_ros.perception.hri_face import (
    DEFAULT_ID_PREFIX,
    check_id_prefix,
    cropped_face,
    face_id,
    normalized_landmarks,
    normalized_roi,
)
from fer_mask_ros.ros.convert import array_to_image, msg_to_bgr, stamp_to_sec

DEFAULT_PREFIX = "/humans"
FACE_TOPICS = ("roi", "cropped", "landmarks", "expression", "masked")


def hri_msgs_missing() -> Optional[str]:
    """None when hri_msgs imports, else why the bridge is off (one line)."""
    try:
        import hri_msgs.msg  # noqa: F401, PLC0415
    except ImportError as exc:
        return (f"hri_msgs is not installed ({exc}); on Noetic: apt install ros-noetic-hri-msgs; on Debian 12: "
                "make setup links its source (HRI_MSGS_SRC, default ../shared/ros4hri/hri_msgs) into .ws/src")
    return None


def _message_types() -> Dict[str, Any]:
    from hri_msgs.msg import (  # noqa: PLC0415
        Expression,
        FacialLandmarks,
        NormalizedPointOfInterest2D,
        NormalizedRegionOfInterest2D,
    )
    from sensor_msgs.msg import Image  # noqa: PLC0415
    from std_msgs.msg import Bool  # noqa: PLC0415

    return {"roi": NormalizedRegionOfInterest2D, "cropped": Image, "landmarks": FacialLandmarks,
            "expression": Expression, "masked": Bool, "point": NormalizedPointOfInterest2D}


def _ros_publisher(topic: str, msg_type: Any, queue_size: int) -> Any:
    import rospy  # noqa: PLC0415

    return rospy.Publisher(topic, msg_type, queue_size=queue_size)


class FaceTopics:
    """The publishers of one face: <base>/roi, cropped, landmarks, expression, masked."""

    def __init__(self, base: str, types: Dict[str, Any], make_publisher: Callable[..., Any]):
        self.base = base
        self.pubs = {name: make_publisher(f"{base}/{name}", types[name], 5) for name in FACE_TOPICS}

    def wants(self, name: str) -> bool:
        return self.pubs[name].get_num_connections() > 0

    def publish(self, name: str, msg: Any) -> None:
        self.pubs[name].publish(msg)

    def unregister(self) -> None:
        for pub in self.pubs.values():
            pub.unregister()
        self.pubs = {}


class Rep155Bridge:
    """Turns frames (EmotionArray + FaceArray + image of one header) into REP-155 messages.

    `make_publisher(topic, type, queue_size)` defaults to rospy.Publisher (tests pass fakes). Not thread-safe:
    call `frame` and `expire_idle` from one thread at a time (the node holds a lock).
    """

    def __init__(self, prefix: str = DEFAULT_PREFIX, id_prefix: str = DEFAULT_ID_PREFIX, crop_width: int = 128,
                 crop_height: int = 128, forget_after_s: float = 0.5,
                 make_publisher: Optional[Callable[..., Any]] = None):
        from hri_msgs.msg import IdsList  # noqa: PLC0415

        if crop_width <= 0 or crop_height <= 0:
            raise ValueError(f"crop size {crop_width}x{crop_height} has no pixels")
        if forget_after_s <= 0:
            raise ValueError(f"forget_after_s must be > 0, got {forget_after_s}")
        self.prefix = prefix.rstrip("/")
        self.id_prefix = check_id_prefix(id_prefix)
        self.crop_size = (int(crop_width), int(crop_height))
        self.forget_after_s = float(forget_after_s)
        self._make = make_publisher or _ros_publisher
        self._types = _message_types()
        self._ids_list = IdsList
        self.tracked_pub = self._make(f"{self.prefix}/faces/tracked", IdsList, 5)
        self.faces: Dict[str, FaceTopics] = {}  # insertion order = order of appearance
        self.last_seen: Dict[str, float] = {}  # id -> image time (s) of its last frame
        self.last_frame_wall: Optional[float] = None  # monotonic time of the last frame
        self.last_header: Any = None
        self.frames = self.faces_published = self.appeared = self.left = self.untracked = self.bad_images = 0
        self.bad_inputs = 0
        self.last_bad_input = ""

    # -- one frame -----------------------------------------------------------------------------------------
    def frame(self, emotions: Any, faces: Any = None, image: Any = None) -> None:
        """Publish one frame: tracked ids first (after making new faces' publishers), then each face's topics."""
        header = emotions.header
        t = stamp_to_sec(header.stamp)
        self.frames += 1
        self.last_frame_wall, self.last_header = time.monotonic(), header
        width, height = _image_size(faces, image)
        by_track = {int(f.id): f for f in faces.faces} if faces is not None else {}
        present = []
        for e in emotions.emotions:
            if int(e.face_id) <= 0:
                self.untracked += 1
                continue
            fid = face_id(e.face_id, self.id_prefix)
            if fid not in self.faces:
                self.faces[fid] = FaceTopics(f"{self.prefix}/faces/{fid}", self._types, self._make)
                self.appeared += 1
            self.last_seen[fid] = t
            present.append((fid, e))
        gone = self._drop(lambda seen: abs(t - seen) > self.forget_after_s)
        self._publish_tracked(header)
        # the small messages of every face first (expression leads), then the crops; unregistering (calls to the
        # master) waits until the frame is out
        for fid, e in present:
            self._publish_face(self.faces[fid], header, e, by_track.get(int(e.face_id)), width, height)
        bgr = self._bgr_if_wanted(image, present)
        if bgr is not None:
            for fid, e in present:
                self._publish_crop(self.faces[fid], header, e, bgr)
        self.faces_published += len(present)
        for topics in gone:
            topics.unregister()

    def expire_idle(self, now_stamp: Any = None) -> bool:
        """When no frame came for forget_after_s (wall time), forget every face and publish an empty IdsList
        (the last source header, stamped `now_stamp` when given). True when faces were forgotten."""
        if not self.faces or self.last_frame_wall is None:
            return False
        if time.monotonic() - self.last_frame_wall <= self.forget_after_s:
            return False
        self._forget(lambda seen: True)
        header = self.last_header
        if now_stamp is not None:
            header = type(header)(seq=header.seq, stamp=now_stamp, frame_id=header.frame_id)
        self._publish_tracked(header)
        return True

    def close(self) -> None:
        self._forget(lambda seen: True)
        self.tracked_pub.unregister()

    # -- parts ---------------------------------------------------------------------------------------------
    def _drop(self, stale: Callable[[float], bool]) -> List[FaceTopics]:
        """Take the stale faces out of the tracked set; returns their publishers (for the caller to unregister)."""
        gone = []
        for fid in [f for f, seen in self.last_seen.items() if stale(seen)]:
            gone.append(self.faces.pop(fid))
            del self.last_seen[fid]
            self.left += 1
        return gone

    def _forget(self, stale: Callable[[float], bool]) -> None:
        for topics in self._drop(stale):
            topics.unregister()

    def _publish_tracked(self, header: Any) -> None:
        msg = self._ids_list()
        msg.header = header
        msg.ids = list(self.faces)
        self.tracked_pub.publish(msg)

    def _bgr_if_wanted(self, image: Any, present: List) -> Any:
        if image is None or not any(self.faces[fid].wants("cropped") for fid, _ in present):
            return None
        try:
            return msg_to_bgr(image)
        except ValueError as exc:
            self.bad_images += 1
            self.last_bad_input = str(exc)
            return None

    def _publish_face(self, topics: FaceTopics, header: Any, e: Any, face: Any, width: int, height: int) -> None:
        types = self._types
        try:
            a = affect(e.emotion, e.confidence, e.labels, e.probabilities)
        except ValueError as exc:  # another publisher's labels: counted, the other topics still go out
            self.bad_inputs += 1
            self.last_bad_input = str(exc)
            a = None
        if a is not None:
            self._publish_expression(topics, header, a)
        topics.publish("masked", types["masked"](data=bool(e.masked)))
        if width <= 0 or height <= 0:
            return
        roi = types["roi"]()
        roi.header = header
        roi.xmin, roi.ymin, roi.xmax, roi.ymax = normalized_roi(_box(e), width, height)
        # c: the detector's score (the FaceArray of the same image); without it, the expression's confidence
        roi.c = min(1.0, max(0.0, float(face.score) if face is not None else float(e.confidence)))
        topics.publish("roi", roi)
        if face is not None and face.has_landmarks and topics.wants("landmarks"):
            lm = types["landmarks"]()
            lm.header = header
            lm.width, lm.height = width, height
            lm.landmarks = [types["point"](x=x, y=y, c=c)
                            for x, y, c in normalized_landmarks(face.landmarks, width, height, roi.c)]
            topics.publish("landmarks", lm)

    def _publish_crop(self, topics: FaceTopics, header: Any, e: Any, bgr: Any) -> None:
        if topics.wants("cropped"):
            crop = cropped_face(bgr, _box(e), *self.crop_size)
            topics.publish("cropped", array_to_image(crop, "bgr8", header))

    def _publish_expression(self, topics: FaceTopics, header: Any, a: Any) -> None:
        expression = self._types["expression"]()
        expression.header = header
        expression.expression, expression.valence, expression.arousal = a.expression, a.valence, a.arousal
        expression.confidence = a.confidence
        topics.publish("expression", expression)


def _box(e: Any) -> tuple:
    return (e.roi.x_offset, e.roi.y_offset, e.roi.width, e.roi.height)


def _image_size(faces: Any, image: Any) -> tuple:
    if faces is not None and faces.image_width and faces.image_height:
        return int(faces.image_width), int(faces.image_height)
    if image is not None and getattr(image, "width", 0) and getattr(image, "height", 0):
        return int(image.width), int(image.height)
    return 0, 0
