"""`python -m fer_mask_ros fake-nao`: run a simulated NAO (real qi services) until Ctrl-C / SIGTERM."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from fer_mask_ros.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="clip",
                        help="video file, image, or folder of images to serve as the camera; "
                             "'clip' (default) is the bundled fer_mask_ros/data/demo_clip.*")
    parser.add_argument("--fps", type=float, default=10.0, help="playback rate of the source (default 10)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, loopback only; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=9559, help="port to listen on (default 9559; 0 = any free)")
    parser.add_argument("--listen", default=None, metavar="URL",
                        help="full qi listen URL, e.g. tcp://127.0.0.1:9559 (overrides --host/--port)")
    parser.add_argument("--say-seconds", type=float, default=0.0,
                        help="how long say() blocks, to mimic a speaking robot (default 0)")
    parser.add_argument("--quiet", action="store_true", help="do not print 'NAO says: ...' lines")
    parser.add_argument("--verbose", action="store_true", help="log subscriptions and qi details")


def run(args: argparse.Namespace) -> int:
    from fer_mask_ros.errors import FrameSourceError  # noqa: PLC0415
    from fer_mask_ros.simulation.fake_nao import FakeNao  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="[%(levelname)s] %(name)s: %(message)s")
    if args.fps <= 0:
        raise CommandError(f"--fps must be > 0, got {args.fps}")
    from fer_mask_ros.cli.commands.analyze import camera_index

    if camera_index(args.source) is not None and not os.path.isfile(args.source) and not os.path.isdir(args.source):
        n = camera_index(args.source)
        raise CommandError(f"--source {args.source}: the fake NAO plays recordings (a video, a folder of images, "
                           f"clip); for a webcam use: python -m fer_mask_ros live --camera {n}, or in ROS: roslaunch "
                           f"fer_mask_ros webcam.launch device:={n}")
    url = args.listen or f"tcp://{args.host}:{args.port}"
    if "://" not in url:
        raise CommandError(f"--listen must be a URL like tcp://127.0.0.1:9559, got {url!r}")
    try:  # after the argument checks: a wrong argument is said first
        import qi  # noqa: PLC0415

        # qi logs to stdout; keep it for errors so that stdout shows the "NAO says:" lines
        qi.logging.setLevel(qi.logging.INFO if args.verbose else qi.logging.ERROR)
    except ImportError as exc:
        raise CommandError("the fake NAO needs the qi module: pip install qi") from exc

    try:
        nao = FakeNao(args.source, fps=args.fps, url=url, echo=not args.quiet, say_seconds=args.say_seconds)
    except FrameSourceError as exc:
        raise CommandError(str(exc)) from None
    try:
        nao.start()
    except RuntimeError as exc:
        raise CommandError(f"{exc} (is another fake NAO or NAOqi already on that port?)") from None

    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, _on_signal)
    print(f"fake NAO listening on {nao.url} ({nao.source}); Ctrl-C to stop", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        nao.stop()
        print(f"fake NAO stopped ({len(nao.spoken)} utterances)", file=sys.stderr, flush=True)
    # libqi's threads can abort the interpreter's own exit (SIGABRT in static destructors), as for
    # nodes/nao_camera: everything is closed and flushed, so leave without running them.
    sys.stdout.flush()
    os._exit(0)
