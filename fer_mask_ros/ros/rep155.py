"""ROS4HRI (REP-155) adapter: the graph's tracked faces and smoothed expressions as /humans/faces/... topics.

One frame = one EmotionArray (the classifier's smoothed output for one image, also when empty) with the
FaceArray and the image of the same header. For each tracked face id N (REP-155 id "f<N>"):

    <prefix>/faces/tracked            hri_msgs/IdsList                   ids of the faces tracked now
    <prefix>/faces/<id>/roi           hri_msgs/NormalizedRegionOfInterest2D
    <prefix>/faces/<id>/cropped       sensor_msgs/Image (bgr8, width x height, zero-padded; only when subscribed)
    <prefix>/faces/<id>/aligned       sensor_msgs/Image (bgr8, the same size, eyes level; only when subscribed)
    <prefix>/faces/<id>/landmarks     hri_msgs/FacialLandmarks           5 of the 70 points
    <prefix>/faces/<id>/expression    hri_msgs/Expression                expression, valence, arousal, confidence
    <prefix>/faces/<id>/masked        std_msgs/Bool                      ours: REP-155 has no field for a mask
    /tf                               tf2_msgs/TFMessage                 face_<id> in the camera frame (the image
                                      header's frame_id; head pose from the 5 landmarks), gaze_<id> in face_<id>
    <prefix>/reference_frame          parameter: set to `reference_frame` (empty: the camera frame) unless set

At most `max_faces` faces per frame get topics (the ones already tracked first, then the best detector
scores); the rest are counted in `faces_dropped`, so one hostile EmotionArray cannot make thousands of
publishers.

Every header is the source image's. A face's publishers are made when it first appears (before the
IdsList that names it) and unregistered when it has not been seen for `forget_after_s` of image time,
or when no frame came for that long (the camera stopped), so no publisher outlives its face.
The expression is the `emotions` topic's own top class and confidence (never recomputed), so the two agree.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

from fer_mask_ros.interaction.affect import affect
from fer_mask_ros.perception.head_pose import (
    DEFAULT_HFOV_DEG,
    GAZE_IN_FACE,
    head_pose,
    nominal_intrinsics,
    usable_intrinsics,
)
from fer_mask_ros.perception.hri_face import (
    DEFAULT_ID_PREFIX,
    aligned_face,
    check_id_prefix,
    cropped_face,
    face_id,
    normalized_landmarks,
    normalized_roi,
)
from fer_mask_ros.ros.convert import array_to_image, msg_to_bgr, stamp_to_sec

DEFAULT_PREFIX = "/humans"
FACE_TOPICS = ("roi", "cropped", "aligned", "landmarks", "expression", "masked")
MAX_FACES_LIMIT = 1000


def hri_msgs_missing() -> Optional[str]:
    """None when hri_msgs imports, else why the bridge is off and where hri_msgs comes from (one line)."""
    try:
        import hri_msgs.msg  # noqa: F401, PLC0415
    except ImportError as exc:
        return (f"hri_msgs (ROS4HRI's messages, https://github.com/ros4hri/hri_msgs, BSD) is not installed ({exc}); "
                "on Noetic: apt install ros-noetic-hri-msgs; on Debian 12 (not packaged): put its source beside "
                "this repository as ../shared/ros4hri/hri_msgs, or name it with HRI_MSGS_SRC=/path, and run "
                "make setup, which links it into .ws/src and builds it")
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

    return {"roi": NormalizedRegionOfInterest2D, "cropped": Image, "aligned": Image, "landmarks": FacialLandmarks,
            "expression": Expression, "masked": Bool, "point": NormalizedPointOfInterest2D}


def _tf_types() -> Optional[Dict[str, Any]]:
    """tf2_msgs and geometry_msgs types, or None when tf2_msgs is not installed (the bridge then publishes no TF)."""
    try:
        from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3  # noqa: PLC0415
        from tf2_msgs.msg import TFMessage  # noqa: PLC0415
    except ImportError:
        return None
    return {"message": TFMessage, "stamped": TransformStamped, "transform": Transform, "vector": Vector3,
            "quaternion": Quaternion}


def _ros_publisher(topic: str, msg_type: Any, queue_size: int) -> Any:
    import rospy  # noqa: PLC0415

    return rospy.Publisher(topic, msg_type, queue_size=queue_size)


class FaceTopics:
    """The publishers of one face: <base>/roi, cropped, aligned, landmarks, expression, masked."""

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
                 crop_height: int = 128, forget_after_s: float = 0.5, max_faces: int = 32, publish_tf: bool = True,
                 default_hfov_deg: float = DEFAULT_HFOV_DEG, make_publisher: Optional[Callable[..., Any]] = None):
        from hri_msgs.msg import IdsList  # noqa: PLC0415

        if crop_width <= 0 or crop_height <= 0:
            raise ValueError(f"crop size {crop_width}x{crop_height} has no pixels")
        if forget_after_s <= 0:
            raise ValueError(f"forget_after_s must be > 0, got {forget_after_s}")
        if not 1 <= int(max_faces) <= MAX_FACES_LIMIT:
            raise ValueError(f"max_faces must be in [1, {MAX_FACES_LIMIT}], got {max_faces}")
        nominal_intrinsics(1, 1, default_hfov_deg)  # ValueError for a field of view out of (0, 180)
        self.max_faces = int(max_faces)
        self.default_hfov_deg = float(default_hfov_deg)
        self.prefix = prefix.rstrip("/")
        self.id_prefix = check_id_prefix(id_prefix)
        self.crop_size = (int(crop_width), int(crop_height))
        self.forget_after_s = float(forget_after_s)
        self._make = make_publisher or _ros_publisher
        self._types = _message_types()
        self._ids_list = IdsList
        self.tracked_pub = self._make(f"{self.prefix}/faces/tracked", IdsList, 5)
        self._tf = _tf_types() if publish_tf else None
        self.tf_pub = self._make("/tf", self._tf["message"], 100) if self._tf else None
        self.camera_k: Optional[Any] = None  # (width, height, 3x3) of the last usable camera_info
        self.camera_frame = ""  # frame_id of the last frame's image header
        self.faces: Dict[str, FaceTopics] = {}  # insertion order = order of appearance
        self.last_seen: Dict[str, float] = {}  # id -> image time (s) of its last frame
        self.last_frame_wall: Optional[float] = None  # monotonic time of the last frame
        self.last_header: Any = None
        self.frames = self.faces_published = self.appeared = self.left = self.untracked = self.bad_images = 0
        self.bad_inputs = 0
        self.last_bad_input = ""
        self.faces_dropped = self.aligned_by_landmarks = self.aligned_unrotated = self.tf_frames = 0
        self.pose_methods = {"pnp": 0, "box": 0}
        self.tf_skipped = 0  # faces without a pose: an image header with no frame_id, or a box without pixels

    def set_camera_info(self, width: int, height: int, k: Any) -> bool:
        """Intrinsics from sensor_msgs/CameraInfo (K) for images of this size; False when K is not usable."""
        m = usable_intrinsics(k)
        self.camera_k = (int(width), int(height), m) if m is not None and width > 0 and height > 0 else None
        return self.camera_k is not None

    def camera_matrix(self, width: int, height: int) -> Any:
        """camera_info's K when it is for images of this size, else a nominal pinhole (default_hfov_deg)."""
        if self.camera_k is not None and self.camera_k[:2] == (width, height):
            return self.camera_k[2]
        return nominal_intrinsics(width, height, self.default_hfov_deg)

    def camera_source(self, width: int, height: int) -> str:
        if self.camera_k is not None and self.camera_k[:2] == (width, height):
            return "camera_info"
        return f"nominal pinhole, hfov {self.default_hfov_deg:g} deg"

    # -- one frame -----------------------------------------------------------------------------------------
    def frame(self, emotions: Any, faces: Any = None, image: Any = None) -> None:
        """Publish one frame: tracked ids first (after making new faces' publishers), then each face's topics."""
        header = emotions.header
        t = stamp_to_sec(header.stamp)
        self.frames += 1
        self.last_frame_wall, self.last_header = time.monotonic(), header
        width, height = _image_size(faces, image)
        by_track = {int(f.id): f for f in faces.faces} if faces is not None else {}
        candidates = {}
        for e in emotions.emotions:
            if int(e.face_id) <= 0:
                self.untracked += 1
                continue
            candidates.setdefault(face_id(e.face_id, self.id_prefix), e)
        # faces not in this frame and unseen for forget_after_s leave first, so their slots are free
        gone = self._drop(lambda fid, seen: fid not in candidates and abs(t - seen) > self.forget_after_s)
        present = []
        for fid, e in self._within_cap(candidates, by_track):
            if fid not in self.faces:
                self.faces[fid] = FaceTopics(f"{self.prefix}/faces/{fid}", self._types, self._make)
                self.appeared += 1
            self.last_seen[fid] = t
            present.append((fid, e))
        self.camera_frame = header.frame_id
        self._publish_tracked(header)
        # the small messages of every face first (expression leads), then the TF frames, then the crops;
        # unregistering (calls to the master) waits until the frame is out. A client that sees a new id in
        # `tracked` subscribes to its topics then, so its first roi is of a later frame than its first TF.
        for fid, e in present:
            self._publish_face(self.faces[fid], header, e, by_track.get(int(e.face_id)), width, height)
        self._publish_tf(header, present, by_track, width, height)
        bgr = self._bgr_if_wanted(image, present)
        if bgr is not None:
            for fid, e in present:
                self._publish_crop(self.faces[fid], header, e, bgr, by_track.get(int(e.face_id)))
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
        self._forget(lambda fid, seen: True)
        header = self.last_header
        if now_stamp is not None:
            header = type(header)(seq=header.seq, stamp=now_stamp, frame_id=header.frame_id)
        self._publish_tracked(header)
        return True

    def close(self) -> None:
        self._forget(lambda fid, seen: True)
        self.tracked_pub.unregister()
        if self.tf_pub is not None:
            self.tf_pub.unregister()

    # -- parts ---------------------------------------------------------------------------------------------
    def _within_cap(self, candidates: Dict[str, Any], by_track: Dict[int, Any]) -> List[tuple]:
        """The (id, EmotionStamped) that get topics, in message order: at most max_faces tracked at once, the
        faces already tracked first, then the best detector scores (else confidences); the rest are counted."""
        free = self.max_faces - sum(1 for fid in self.faces if fid not in candidates)
        if len(candidates) <= free:
            return list(candidates.items())

        def rank(item):
            fid, e = item
            face = by_track.get(int(e.face_id))
            score = float(face.score) if face is not None else float(e.confidence)
            return (fid not in self.faces, -(score if score == score else 0.0))  # NaN ranks as 0

        keep = {fid for fid, _ in sorted(candidates.items(), key=rank)[:max(0, free)]}
        self.faces_dropped += len(candidates) - len(keep)
        return [(fid, e) for fid, e in candidates.items() if fid in keep]

    def _drop(self, stale: Callable[[str, float], bool]) -> List[FaceTopics]:
        """Take the stale faces out of the tracked set; returns their publishers (for the caller to unregister)."""
        gone = []
        for fid in [f for f, seen in self.last_seen.items() if stale(f, seen)]:
            gone.append(self.faces.pop(fid))
            del self.last_seen[fid]
            self.left += 1
        return gone

    def _forget(self, stale: Callable[[str, float], bool]) -> None:
        for topics in self._drop(stale):
            topics.unregister()

    def _publish_tracked(self, header: Any) -> None:
        msg = self._ids_list()
        msg.header = header
        msg.ids = list(self.faces)
        self.tracked_pub.publish(msg)

    def _bgr_if_wanted(self, image: Any, present: List) -> Any:
        if image is None or not any(self.faces[fid].wants(name) for fid, _ in present for name in ("cropped",
                                                                                                  "aligned")):
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

    def _publish_crop(self, topics: FaceTopics, header: Any, e: Any, bgr: Any, face: Any) -> None:
        if topics.wants("cropped"):
            crop = cropped_face(bgr, _box(e), *self.crop_size)
            topics.publish("cropped", array_to_image(crop, "bgr8", header))
        if topics.wants("aligned"):
            landmarks = face.landmarks if face is not None and face.has_landmarks else None
            aligned, rotated = aligned_face(bgr, landmarks, _box(e), *self.crop_size)
            if rotated:
                self.aligned_by_landmarks += 1
            else:
                self.aligned_unrotated += 1
            topics.publish("aligned", array_to_image(aligned, "bgr8", header))

    def _publish_tf(self, header: Any, present: List, by_track: Dict[int, Any], width: int, height: int) -> None:
        """face_<id> in the image's frame (head pose) and gaze_<id> in face_<id>, all in one TFMessage."""
        if self.tf_pub is None or not present:
            return
        if not header.frame_id or width <= 0 or height <= 0:
            self.tf_skipped += len(present)
            return
        types = self._tf
        camera = self.camera_matrix(width, height)
        msg = types["message"]()
        for fid, e in present:
            face = by_track.get(int(e.face_id))
            landmarks = face.landmarks if face is not None and face.has_landmarks else None
            try:
                pose = head_pose(landmarks, _box(e), camera)
            except ValueError:
                self.tf_skipped += 1
                continue
            self.pose_methods[pose.method] += 1
            msg.transforms.append(self._stamped(header, header.frame_id, "face_" + fid, pose.translation,
                                                pose.rotation))
            msg.transforms.append(self._stamped(header, "face_" + fid, "gaze_" + fid, (0.0, 0.0, 0.0), GAZE_IN_FACE))
        if msg.transforms:
            self.tf_frames += 1
            self.tf_pub.publish(msg)

    def _stamped(self, header: Any, parent: str, child: str, translation: tuple, rotation: tuple) -> Any:
        types = self._tf
        t = types["stamped"]()
        t.header = type(header)(seq=header.seq, stamp=header.stamp, frame_id=parent)
        t.child_frame_id = child
        t.transform = types["transform"](translation=types["vector"](*translation),
                                         rotation=types["quaternion"](*rotation))
        return t

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
