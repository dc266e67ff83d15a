"""emotion_speech's speech thresholds changed at run time, with dynamic_reconfigure (as opencv_apps offers).

The server lives under the node's `~policy` namespace, so its parameters are the `~policy` keys themselves
(config/emotion_speech.yaml): a value given at start-up in `~policy` is its initial value, and every change is
written back there. From a shell (Debian's python3-dynamic-reconfigure ships dynparam):

    python3 /usr/lib/dynamic_reconfigure/dynparam set /fer_mask/emotion_speech/policy min_confidence 0.6
    rosrun dynamic_reconfigure dynparam set /fer_mask/emotion_speech/policy min_confidence 0.6   (Noetic)

or rqt_reconfigure where it is installed. Values outside a key's declared range are clamped by the server;
a set the policy refuses (e.g. NaN) leaves every threshold as it was. The memory bounds (max_faces,
max_observations) and the sentences are not reconfigurable: they need a restart.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Dict, Optional, Tuple

#: key -> (dynamic_reconfigure type, min, max, description); the ranges are config/emotion_speech.yaml's
THRESHOLDS: Dict[str, Tuple[str, Any, Any, str]] = {
    "min_confidence": ("double", 0.0, 1.0, "mean confidence an unmasked face's emotion needs to be named"),
    "min_confidence_masked": ("double", 0.0, 1.0, "the same for a masked face"),
    "min_agreement": ("double", 0.0, 1.0, "share of the window's observations the emotion needs"),
    "min_observations": ("int", 1, 10000, "observations in the window before a face is judged"),
    "window_s": ("double", 0.01, 3600.0, "seconds of observations a decision is based on"),
    "cooldown_s": ("double", 0.0, 3600.0, "seconds of silence after a sentence"),
    "repeat_after_s": ("double", 0.0, 86400.0, "seconds before the same face hears the same emotion again"),
    "say_unsure": ("bool", False, True, "say 'I am not sure how you feel' about a face that never became stable"),
}
_PY_TYPES = {"double": float, "int": int, "bool": bool}


def current_thresholds(policy: Any) -> Dict[str, Any]:
    return {key: _PY_TYPES[kind](getattr(policy, key)) for key, (kind, _, _, _) in THRESHOLDS.items()}


def apply_thresholds(policy: Any, values: Dict[str, Any]) -> Dict[str, Any]:
    """Set the thresholds in `values` on a SpeechPolicy, all or none: a set SpeechPolicy itself would refuse
    raises ValueError and changes nothing. Returns the thresholds now in force."""
    from fer_mask_ros.interaction.policy import SpeechPolicy  # noqa: PLC0415

    new = current_thresholds(policy)
    new.update({key: _PY_TYPES[THRESHOLDS[key][0]](value) for key, value in values.items() if key in THRESHOLDS})
    SpeechPolicy(**new)  # the policy's own checks (finite numbers, ranges); ValueError when refused
    with policy._lock:  # decisions see either the old or the new set, never half of each
        for key, value in new.items():
            setattr(policy, key, value)
        policy.min_observations = max(1, int(policy.min_observations))
    return current_thresholds(policy)


def config_type(policy: Any) -> SimpleNamespace:
    """The description dynamic_reconfigure's Server wants (what a generated <Name>Config module holds)."""
    defaults = current_thresholds(policy)
    params = [{"name": key, "type": kind, "level": 0, "description": text, "edit_method": ""}
              for key, (kind, _, _, text) in THRESHOLDS.items()]
    return SimpleNamespace(
        defaults=defaults,
        min={key: _PY_TYPES[kind](low) for key, (kind, low, _, _) in THRESHOLDS.items()},
        max={key: _PY_TYPES[kind](high) for key, (kind, _, high, _) in THRESHOLDS.items()},
        level={key: 0 for key in THRESHOLDS}, type={key: kind for key, (kind, _, _, _) in THRESHOLDS.items()},
        all_level=0,
        config_description={"name": "Default", "type": "", "state": True, "cstate": "true", "id": 0, "parent": 0,
                            "parameters": params, "groups": []})


def serve_thresholds(policy: Any, namespace: str = "~policy",
                     log: Optional[Callable[[str], None]] = None) -> Tuple[Any, str]:
    """Start a dynamic_reconfigure server for the policy's thresholds: (server, "") or (None, why not)."""
    try:
        from dynamic_reconfigure.server import Server  # noqa: PLC0415
    except ImportError as exc:
        return None, f"dynamic_reconfigure is not installed ({exc}; Debian: python3-dynamic-reconfigure)"

    def on_change(config, _level):
        wanted = {key: config[key] for key in THRESHOLDS if key in config}
        try:
            now = apply_thresholds(policy, wanted)
        except ValueError as exc:
            now = current_thresholds(policy)
            if log:
                log(f"speech thresholds refused ({exc}); kept {now}")
        else:
            if log:
                log(f"speech thresholds now {now}")
        config.update(now)
        return config

    return Server(config_type(policy), on_change, namespace=namespace), ""
