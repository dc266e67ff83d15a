"""`bench --graph`: the real ROS graph (fake_nao -> nao_camera -> face_detector -> emotion_classifier)
timed end to end, plus the synthetic frames (1..N masked faces from the bundled clip) it is fed.

Frames: `FaceFrames(width, height, faces)` composites the bundled clip's masked FER faces
(fer_mask_ros/data/demo_clip.*) on the clip's background, moving slowly, so every resolution and
face count uses the same faces. The graph bench starts a fake NAO serving those frames at the
offered rate, `roslaunch`es nao.launch against it and measures, per case:

* latency camera stamp -> EmotionStamped arrival (p50 / p95 / max), frames processed / dropped per
  second (EmotionArray count vs camera images), CPU % and RSS per node (from /proc);
* per-stage times (decode, detection, crop, classification, publish) from the same library calls,
  timed in this process on the same frames.

Writes a Markdown table (docs/PERFORMANCE.md) and docs/performance.json.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fer_mask_ros.config import PACKAGE_DIR, REPO_ROOT, model_path
from fer_mask_ros.errors import MasterError
from fer_mask_ros.simulation.face_frames import FaceFrames, clip_face_patches

REPO = REPO_ROOT
RESOLUTIONS = {"QVGA": (320, 240), "VGA": (640, 480)}
NAO_RESOLUTION = {"QVGA": 1, "VGA": 2}


# --------------------------------------------------------------------------------------------- frames


# --------------------------------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (0..100, linear interpolation); nan for no values."""
    if not len(values):
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass
class ProcSample:
    """CPU time (s) and RSS (bytes) of one process at one moment (Linux /proc)."""

    cpu_s: float
    rss: int
    t: float


def proc_sample(pid: int) -> Optional[ProcSample]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime (fields 14, 15 of stat)
    return ProcSample(cpu_s=cpu, rss=rss_pages * os.sysconf("SC_PAGE_SIZE"), t=time.monotonic())


def cpu_percent(a: ProcSample, b: ProcSample) -> float:
    dt = b.t - a.t
    return 100.0 * (b.cpu_s - a.cpu_s) / dt if dt > 0 else float("nan")


def machine_description() -> Dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError):
        mem_gib = float("nan")
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory_gib": f"{mem_gib:.1f}",
            "os": platform.platform(), "python": platform.python_version(),
            "load_before": " ".join(f"{v:.2f}" for v in load)}


@dataclass
class CaseResult:
    resolution: str
    offered_fps: float
    faces: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    processed_fps: float
    dropped_fps: float
    peer_fps: Optional[float] = None
    camera_fps: float = float("nan")
    faces_per_frame: float = float("nan")
    cpu_percent: Dict[str, float] = field(default_factory=dict)
    rss_mb: Dict[str, float] = field(default_factory=dict)
    stages_ms: Dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    fresh_share: float = float("nan")  # faces classified in their frame (the per-face schedule)
    classify_every_ms: float = float("nan")  # crop + classification ms per frame with every face in every frame

    @property
    def capacity_fps(self) -> Optional[float]:
        """Frames per second one core gets through all stages (1000 / sum of the stage ms)."""
        total = sum(v for v in self.stages_ms.values() if v == v)
        return 1000.0 / total if total > 0 else None

    @property
    def peer_ratio(self) -> Optional[float]:
        """capacity_fps / peer_fps: ours against `fer` on the same frames, both per frame on one process."""
        cap = self.capacity_fps
        return cap / self.peer_fps if cap and self.peer_fps else None

    def record(self) -> Dict:
        """The docs/performance.json record (rounded; nan -> null)."""
        d = asdict(self)
        d.update(capacity_fps=self.capacity_fps, peer_ratio=self.peer_ratio)
        return {k: _json_value(v) for k, v in d.items()}


def _json_value(v):
    if isinstance(v, float):
        return None if v != v else round(v, 2)
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    return v


# --------------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    resolution: str
    offered_fps: float
    faces: int


DEFAULT_CASES = tuple(Case(r, f, n) for r in ("QVGA", "VGA") for n in (1, 2, 5) for f in (10.0, 30.0))


def parse_cases(text: Optional[str]) -> List[Case]:
    """"QVGA@30x2,VGA@10x5" -> cases; None/"" -> all 12 default cases. ValueError on bad text."""
    if not text:
        return list(DEFAULT_CASES)
    out = []
    for item in text.split(","):
        item = item.strip()
        try:
            res, rest = item.split("@")
            fps, faces = rest.split("x")
            case = Case(res.upper(), float(fps), int(faces))
        except ValueError:
            raise ValueError(f"bad case {item!r}; write RESOLUTION@FPSxFACES, e.g. QVGA@30x2") from None
        if case.resolution not in RESOLUTIONS or case.offered_fps <= 0 or case.faces < 0:
            raise ValueError(f"bad case {item!r}: resolution QVGA or VGA, fps > 0, faces >= 0")
        out.append(case)
    return out


# --------------------------------------------------------------------------------------------- per-stage times
def stage_times(frames: Sequence[np.ndarray], detector, classifier, repeats: int = 1,
                fps: float = 10.0, rates: Optional[Dict[str, float]] = None) -> Dict[str, float]:
    """Mean ms per frame of each stage the graph runs, timed in this process on the same frames:
    decode (rgb8 sensor_msgs/Image -> BGR), detection (+ tracking), crop (aligned crops of the faces the
    schedule classifies in the frame), classification (`FacePipeline.classify` as the node calls it: the due
    faces through the model, the evidence, the fusion; less the crop time), publish (FaceArray + EmotionStamped
    built and serialised). `rates`: the per-face schedule (default: config/emotion_classifier.yaml's
    classify_hz; {} = every face in every frame); the returned dict's "fresh" (not a stage) is the share of
    faces classified in their frame.
    Frames are stamped `fps` apart, so detection includes the pipeline's window re-finds between full scans.
    torch runs with one thread here: with two on a 2-core machine that is busy, each layer waits for a
    descheduled OpenMP thread and a 7 ms batch takes ~280 ms (measured), which says nothing about the stage."""
    import io  # noqa: PLC0415

    import torch  # noqa: PLC0415

    torch.set_num_threads(1)

    from fer_mask_ros.perception.pipeline import FacePipeline  # noqa: PLC0415
    from fer_mask_ros.perception.schedule import ClassifySchedule  # noqa: PLC0415
    from fer_mask_ros.ros.convert import array_to_image, emotion_msg, face_array_msg, image_to_bgr  # noqa: PLC0415

    pipeline = FacePipeline(detector=detector, classifier=classifier, schedule=ClassifySchedule(rates))
    totals = {k: 0.0 for k in ("decode", "detection", "crop", "classification", "publish")}
    n = fresh = offered = 0
    msgs = [array_to_image(f[:, :, ::-1], "rgb8") for f in frames]
    for i, msg in enumerate(msgs[:6]):  # warm-up, untimed: lazy initialisation of the runtimes, and the input
        bgr = image_to_bgr(msg)          # shapes of both full scans and windows (onnxruntime plans each once)
        faces = pipeline.detect(bgr, float(i) / fps)
        if faces:
            classifier.predict_batch(pipeline.crops(bgr, faces), flip=False)
    pipeline.reset()
    for _ in range(max(1, repeats)):
        pipeline.reset()  # each pass starts as the stream did: stamps from 0, no tracks
        for i, msg in enumerate(msgs):
            msg.header.stamp.secs = i
            t0 = time.perf_counter()
            bgr = image_to_bgr(msg)
            t1 = time.perf_counter()
            faces = pipeline.detect(bgr, float(i) / fps)
            t2 = time.perf_counter()
            # as the emotion_classifier node: the faces due in this frame through the model, every face an answer
            results = pipeline.classify(bgr, faces, float(i) / fps, smooth=True)
            t3 = time.perf_counter()
            due = [f for f, r in zip(faces, results) if r.fresh]
            pipeline.crops(bgr, due)  # the crops classify made, timed alone
            t4 = time.perf_counter()
            buf = io.BytesIO()
            face_array_msg(msg.header, faces, bgr.shape[1], bgr.shape[0]).serialize(buf)
            h, w = bgr.shape[:2]
            for r in results:
                emotion_msg(msg.header, r.track_id, r.detection, r.prediction, w, h).serialize(buf)
            t5 = time.perf_counter()
            crop = t4 - t3
            for k, dt in zip(totals, (t1 - t0, t2 - t1, crop, max(0.0, t3 - t2 - crop), t5 - t4)):
                totals[k] += dt
            n += 1
            fresh, offered = fresh + len(due), offered + len(faces)
    out = {k: 1000.0 * v / n for k, v in totals.items()}
    out["fresh"] = fresh / offered if offered else float("nan")
    return out


# --------------------------------------------------------------------------------------------- the graph run
class _Listener:
    """Latencies (camera stamp -> arrival) of EmotionStamped / EmotionArray and message counts, in a window."""

    def __init__(self, ns: str):
        import threading  # noqa: PLC0415

        import rospy  # noqa: PLC0415
        from sensor_msgs.msg import CameraInfo  # noqa: PLC0415

        from fer_mask_ros.msg import EmotionArray, EmotionStamped  # noqa: PLC0415

        self.rospy = rospy
        self.lock = threading.Lock()
        self.reset()
        self.arrays_total = 0
        self.subs = [
            rospy.Subscriber(f"/{ns}/emotions", EmotionStamped, self._emotion, queue_size=500),
            rospy.Subscriber(f"/{ns}/emotion_array", EmotionArray, self._array, queue_size=500),
            rospy.Subscriber(f"/{ns}/camera/front/camera_info", CameraInfo, self._info, queue_size=500),
        ]

    def reset(self) -> None:
        with getattr(self, "lock", None) or _nolock():
            self.latencies: List[float] = []
            self.frame_latencies: List[float] = []
            self.arrays = 0
            self.infos = 0
            self.faces = 0

    def _lat(self, msg) -> float:
        return (self.rospy.get_rostime() - msg.header.stamp).to_sec() * 1000.0

    def _emotion(self, msg) -> None:
        lat = self._lat(msg)
        with self.lock:
            self.latencies.append(lat)

    def _array(self, msg) -> None:
        lat = self._lat(msg)
        with self.lock:
            self.frame_latencies.append(lat)
            self.arrays += 1
            self.arrays_total += 1
            self.faces += len(msg.emotions)

    def _info(self, _msg) -> None:
        with self.lock:
            self.infos += 1


class _nolock:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _find_pid(name_arg: str) -> Optional[int]:
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if name_arg.encode() in args:
            return int(d)
    return None


def _wait(pred, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


def _stop(proc, sig_first=None, timeout: float = 10.0) -> None:
    import signal  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig_first or signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextlib.contextmanager
def private_master(port: int, node_name: str, prefix: str):
    """A roscore of our own on `port`, this process as rospy node `node_name`; yields (env, procs, tmp).

    `env` is the environment for child processes (ROS_MASTER_URI, ROS_HOME inside the temporary
    folder `tmp`); every process put into `procs` is stopped on exit, newest first, then roscore,
    and `tmp` is removed.
    """
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    import rosgraph  # noqa: PLC0415

    master = f"http://127.0.0.1:{port}"
    os.environ["ROS_MASTER_URI"] = master
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    env = dict(os.environ, ROS_MASTER_URI=master, PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("ROS_HOME", str(tmp / "ros_home"))
    procs: Dict[str, object] = {}
    try:
        procs["roscore"] = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
        if not _wait(lambda: rosgraph.is_master_online(master), 30):
            raise MasterError(f"roscore did not start on port {port}")
        import rospy  # noqa: PLC0415

        rospy.init_node(node_name, anonymous=True, disable_signals=True)
        yield env, procs, tmp
    finally:
        for name in reversed(list(procs)):
            _stop(procs[name])
        shutil.rmtree(tmp, ignore_errors=True)


def _ensure_messages() -> None:
    """Make fer_mask_ros.msg importable when this source tree shadows the catkin devel package
    (`python -m fer_mask_ros` run from the repository root): add the devel space's package folder."""
    import sys  # noqa: PLC0415

    import fer_mask_ros  # noqa: PLC0415

    try:
        import fer_mask_ros.msg  # noqa: F401, PLC0415
        return
    except ModuleNotFoundError:
        pass
    for entry in sys.path:
        folder = os.path.join(entry or ".", "fer_mask_ros")
        if os.path.isdir(os.path.join(folder, "msg")) and folder not in fer_mask_ros.__path__:
            fer_mask_ros.__path__.append(folder)
    import fer_mask_ros.msg  # noqa: F401, PLC0415


def run_graph_bench(args) -> int:
    import shutil  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from fer_mask_ros.errors import CommandError  # noqa: PLC0415

    try:
        cases = parse_cases(args.graph_cases)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    model = args.graph_model or model_path("fer_mask_net.pt")
    if not os.path.isfile(model):
        raise CommandError(f"expression model {model} not found (pass --graph-model)")
    if shutil.which("roslaunch") is None or shutil.which("roscore") is None:
        raise CommandError("roslaunch/roscore not on PATH: source .ws/devel/setup.bash (or use `make bench`)")
    peer = args.peer_python
    if peer and not os.path.isfile(peer):
        print(f"bench: peer python {peer} not found; peer_fps stays null (make bench-peer)", file=sys.stderr)
        peer = None

    machine = machine_description()
    from fer_mask_ros.perception.detection import default_detector_name  # noqa: PLC0415

    machine["detector"] = _detector_name(args) or default_detector_name()
    results: List[CaseResult] = []
    patches = clip_face_patches()
    try:
        _ensure_messages()
    except ModuleNotFoundError:
        raise CommandError("fer_mask_ros.msg not found: source .ws/devel/setup.bash (or use `make bench`)") from None
    try:
        with private_master(args.graph_master_port, "bench_graph", "fer_bench_") as master:
            _run_cases(args, cases, model, peer, machine, master, results, patches)
    except MasterError as exc:
        raise CommandError(str(exc)) from None
    table = render_markdown(results, machine)
    print()
    print(table)
    if not args.graph_no_write:
        out = Path(args.graph_out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "performance.json").write_text(json.dumps([r.record() for r in results], indent=1) + "\n")
        write_performance_md(out / "PERFORMANCE.md", table)
        print(f"\nwritten: {out / 'PERFORMANCE.md'}, {out / 'performance.json'}")
    return 0


def _detector_name(args) -> Optional[str]:
    """`bench --detector NAME`'s detector, or None (config/face_detector.yaml's)."""
    value = getattr(args, "detector", None)
    return value if isinstance(value, str) else None


def _run_cases(args, cases, model, peer, machine, master, results, patches) -> None:
    """Every case against nao.launch under `master` (private_master's env, procs, tmp); rows go to `results`."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    import cv2  # noqa: PLC0415
    import rosgraph  # noqa: PLC0415

    from fer_mask_ros.errors import CommandError  # noqa: PLC0415

    env, procs, tmp = master
    stages_cache: Dict[Tuple[str, int, float], Tuple[Dict[str, float], ...]] = {}
    peer_cache: Dict[Tuple[str, int], Optional[float]] = {}
    procs["graph"] = subprocess.Popen(
        ["roslaunch", "fer_mask_ros", "nao.launch", "camera_node:=false", "speech:=false", f"model:={model}",
         f"detector:={_detector_name(args) or ''}", "output:=log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listener = _Listener("fer_mask")
    if not _wait(lambda: _find_pid("__name:=emotion_classifier") and _find_pid("__name:=face_detector"), 60):
        raise CommandError("the graph did not start (roslaunch nao.launch)")
    master_api = rosgraph.Master("/bench_graph")

    def _classifier_ready() -> bool:  # the service is registered once the model is loaded
        try:
            return bool(master_api.lookupService("/fer_mask/classify_image"))
        except Exception:
            return False

    _wait(_classifier_ready, 120)  # stage timings below must not overlap the nodes' start-up
    pids = {"face_detector": _find_pid("__name:=face_detector"),
            "emotion_classifier": _find_pid("__name:=emotion_classifier")}
    from fer_mask_ros.perception.classifier import EmotionClassifier  # noqa: PLC0415
    from fer_mask_ros.perception.detection import make_detector  # noqa: PLC0415

    detector = make_detector(_detector_name(args), num_threads=1)
    classifier = EmotionClassifier(model, num_threads=1)  # as the node runs it (num_threads: 1)
    print(f"bench --graph: {len(cases)} case(s), {args.graph_seconds:g} s each; machine: {machine['cpu']}, "
          f"{machine['cores']} cores, load {machine['load_before']}", flush=True)
    for case in cases:
        w, h = RESOLUTIONS[case.resolution]
        key = (case.resolution, case.faces)
        frames = FaceFrames(w, h, case.faces, n_frames=40, patches=patches)
        folder = tmp / f"{case.resolution}_{case.faces}"
        if not folder.exists():
            folder.mkdir(parents=True)
            for i, f in enumerate(frames.frames):
                cv2.imwrite(str(folder / f"{i:03d}.png"), f)
            (folder / "boxes.json").write_text(json.dumps([frames.boxes(i) for i in range(frames.n_frames)]))
        stage_key = key + (case.offered_fps,)  # the frame rate decides how often full scans run
        if stage_key not in stages_cache:
            stages_cache[stage_key] = tuple(  # the configured schedule, and every face in every frame
                stage_times(frames.frames[:30], detector, classifier, repeats=3, fps=case.offered_fps, rates=rates)
                for rates in (None, {}))
        stages, every = (dict(d) for d in stages_cache[stage_key])
        fresh = stages.pop("fresh")
        if peer and key not in peer_cache:
            peer_cache[key] = run_peer(peer, folder)
        procs["fake"] = subprocess.Popen(
            [sys.executable, "-m", "fer_mask_ros", "fake-nao", "--source", str(folder), "--fps",
             f"{case.offered_fps:g}", "--port", str(args.graph_port), "--quiet"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs["camera"] = subprocess.Popen(
            [sys.executable, str(REPO / "nodes" / "nao_camera"), "__name:=nao_camera", "_nao_ip:=127.0.0.1",
             f"_nao_port:={args.graph_port}", f"_resolution:={NAO_RESOLUTION[case.resolution]}",
             f"_fps:={case.offered_fps:g}", "image_raw:=/fer_mask/camera/front/image_raw",
             "camera_info:=/fer_mask/camera/front/camera_info"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start_total = listener.arrays_total
        if not _wait(lambda n=start_total: listener.arrays_total > n + 3, 90):
            raise CommandError(f"{case}: no EmotionArray from the graph within 90 s")
        time.sleep(args.graph_warmup)
        pids["nao_camera"] = procs["camera"].pid
        pids["fake_nao"] = procs["fake"].pid
        before = {k: proc_sample(p) for k, p in pids.items() if p}
        listener.reset()
        t0 = time.monotonic()
        time.sleep(args.graph_seconds)
        with listener.lock:
            lat = list(listener.latencies) or list(listener.frame_latencies)
            arrays, infos, faces_seen = listener.arrays, listener.infos, listener.faces
        dt = time.monotonic() - t0
        after = {k: proc_sample(p) for k, p in pids.items() if p}
        res = CaseResult(
            resolution=case.resolution, offered_fps=case.offered_fps, faces=case.faces,
            p50_ms=percentile(lat, 50), p95_ms=percentile(lat, 95), max_ms=max(lat) if lat else float("nan"),
            processed_fps=arrays / dt, dropped_fps=max(0, infos - arrays) / dt, camera_fps=infos / dt,
            faces_per_frame=faces_seen / arrays if arrays else float("nan"),
            cpu_percent={k: cpu_percent(before[k], after[k]) for k in before if before[k] and after.get(k)},
            rss_mb={k: after[k].rss / 2 ** 20 for k in after if after[k]},
            stages_ms=stages, peer_fps=peer_cache.get(key), duration_s=dt, fresh_share=fresh,
            classify_every_ms=every["crop"] + every["classification"])
        results.append(res)
        print(format_row(res), flush=True)
        _stop(procs.pop("camera"))
        _stop(procs.pop("fake"))
        time.sleep(1.0)


def run_peer(python: str, folder: Path) -> Optional[float]:
    """Frames per second of the PyPI `fer` package (Haar + mini-Xception) on the PNG frames in `folder`."""
    import subprocess  # noqa: PLC0415

    script = PACKAGE_DIR / "bench" / "peer.py"
    try:
        p = subprocess.run([python, str(script), str(folder)], capture_output=True, text=True, timeout=600)
        return float(json.loads(p.stdout.strip().splitlines()[-1])["fps"]) if p.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, IndexError, KeyError, OSError):
        return None


# --------------------------------------------------------------------------------------------- output
def _f(v: Optional[float], digits: int = 1) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"


HEADER = ("| res | offered fps | faces | p50 ms | p95 ms | max ms | processed fps | dropped fps | camera fps "
          "| CPU % det / cls / cam | RSS MB det / cls / cam | decode / detect / crop / classify / publish ms "
          "| capacity fps | peer fps | ours / peer | fresh faces % | crop + classify ms, every face every frame |")


def format_row(r: CaseResult) -> str:
    cpu = " / ".join(_f(r.cpu_percent.get(k), 0) for k in ("face_detector", "emotion_classifier", "nao_camera"))
    rss = " / ".join(_f(r.rss_mb.get(k), 0) for k in ("face_detector", "emotion_classifier", "nao_camera"))
    st = " / ".join(_f(r.stages_ms.get(k), 2) for k in ("decode", "detection", "crop", "classification", "publish"))
    return (f"| {r.resolution} | {r.offered_fps:g} | {r.faces} | {_f(r.p50_ms)} | {_f(r.p95_ms)} | {_f(r.max_ms)} "
            f"| {_f(r.processed_fps)} | {_f(r.dropped_fps)} | {_f(r.camera_fps)} | {cpu} | {rss} | {st} "
            f"| {_f(r.capacity_fps)} | {_f(r.peer_fps)} | {_f(r.peer_ratio, 2)} | {_f(100 * r.fresh_share, 0)} "
            f"| {_f(r.classify_every_ms, 2)} |")


def render_markdown(results: Sequence[CaseResult], machine: Dict[str, str]) -> str:
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {machine['cpu']}, {machine['cores']} cores, "
             f"{machine['memory_gib']} GiB, {machine['os']}, Python {machine['python']}; "
             f"load average before the run: {machine['load_before']}"
             + (f"; face detector: {machine['detector']}." if machine.get("detector") else "."), "",
             HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    lines += [format_row(r) for r in results]
    return "\n".join(lines)


BEGIN, END = "<!-- bench:graph:begin -->", "<!-- bench:graph:end -->"


def write_performance_md(path: Path, table: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the generated block of PERFORMANCE.md between `begin` and `end` (the graph bench's markers
    by default, the soak's in fer_mask_ros.ros.soak), keeping the prose; appended when the markers are missing."""
    block = f"{begin}\n{table}\n{end}"
    if path.exists():
        text = path.read_text()
        if begin in text and end in text:
            text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    else:
        text = "# Performance\n\n" + block + "\n"
    path.write_text(text)
