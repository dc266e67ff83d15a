"""emotion_speech's thresholds changed at run time (fer_mask_ros.ros.policy_reconfigure), without a master."""
from __future__ import annotations

import math

import pytest

from fer_mask_ros.config_schema import node_schema, parse_interval
from fer_mask_ros.interaction.policy import SpeechPolicy
from fer_mask_ros.ros.policy_reconfigure import THRESHOLDS, apply_thresholds, config_type, current_thresholds


def test_thresholds_change_all_or_none():
    policy = SpeechPolicy(min_confidence=0.45, cooldown_s=8.0)
    now = apply_thresholds(policy, {"min_confidence": 0.7, "cooldown_s": 2.5, "min_observations": 5,
                                    "say_unsure": False, "max_faces": 1})  # not a threshold: ignored
    assert now["min_confidence"] == 0.7 and policy.min_confidence == 0.7 and policy.cooldown_s == 2.5
    assert policy.min_observations == 5 and policy.say_unsure is False and policy.max_faces == 128
    before = current_thresholds(policy)
    for bad in ({"min_confidence": math.nan, "cooldown_s": 1.0}, {"min_agreement": 1.5}, {"window_s": 0.0},
                {"cooldown_s": -1.0}, {"repeat_after_s": math.inf}):
        with pytest.raises(ValueError):
            apply_thresholds(policy, bad)
        assert current_thresholds(policy) == before


def test_the_ranges_are_the_declared_ones_and_dynamic_reconfigure_can_encode_them():
    policy = SpeechPolicy()
    kind = config_type(policy)
    assert set(kind.defaults) == set(THRESHOLDS) and kind.defaults["min_confidence"] == policy.min_confidence
    schema = node_schema("emotion_speech")
    for key, (value_type, low, high, _) in THRESHOLDS.items():
        spec = schema["policy/" + key]
        if value_type == "bool":
            assert spec.text == "<bool>"
            continue
        lo, hi, lo_included, _ = parse_interval(spec.text)
        assert high == hi and (low == lo if lo_included else lo < low <= lo + 0.01), (key, spec.text)
    encoding = pytest.importorskip("dynamic_reconfigure.encoding", reason="python3-dynamic-reconfigure missing")
    description = encoding.encode_description(kind)
    assert {p.name for g in description.groups for p in g.parameters} == set(THRESHOLDS)
    config = encoding.encode_config(kind.defaults)
    assert {d.name: d.value for d in config.doubles}["min_confidence"] == policy.min_confidence
