from __future__ import annotations

import pytest

from fer_mask_ros.cli import main


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    from fer_mask_ros.perception.classifier import save_model
    from fer_mask_ros.perception.zoo.network import MaskedFERNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(MaskedFERNet(widths=(4, 8)), str(path))
    return str(path)


def test_bench_classifier_table(tiny_model, capsys):
    rc = main(["bench", "--classifier", "--classifier-model", tiny_model, "--runs", "5", "--warmup", "1",
               "--classifier-batches", "2,4"])
    assert rc == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert lines[0] == "| backend | batch 1 p50 ms | p95 ms | mean ms | batch 2 faces/s | batch 4 faces/s |"
    torch_row = next(line for line in lines if line.startswith("| torch"))
    cells = [c.strip() for c in torch_row.strip("|").split("|")]
    assert len(cells) == 6
    p50, p95, mean = (float(c) for c in cells[1:4])
    assert 0 < p50 <= p95 and mean > 0
    assert all(float(c) > 0 for c in cells[4:])
    assert any(line.startswith("| onnxruntime") for line in lines)
    int8_row = next(line for line in lines if line.startswith("| int8"))
    assert "unavailable" in int8_row and "--calibration" in int8_row  # no int8 copy beside the tiny model


def test_bench_one_backend_and_stats():
    from fer_mask_ros.bench.classifier import bench_backend

    class Fake:
        calls = 0

        def predict_batch(self, images, batch_size=256):
            Fake.calls += 1
            return None

    row = bench_backend(Fake(), runs=7, warmup=2, batches=[3], budget_s=0.001)
    assert row["runs"] == 7 and row["p50_ms"] <= row["p95_ms"] and set(row["throughput"]) == {3}
    assert Fake.calls >= 7 + 2 + 3


def test_bench_errors(tiny_model, tmp_path, capsys):
    assert main(["bench", "--graph", "--graph-model", str(tmp_path / "none.pt")]) == 2  # bench_graph.py
    assert "none.pt" in capsys.readouterr().err
    assert main(["bench", "--classifier", "--classifier-model", str(tmp_path / "none.pt"), "--runs", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "none.pt" in err and "\n" not in err
    assert main(["bench", "--classifier", "--classifier-model", tiny_model, "--classifier-batches", "x"]) == 2


def test_bench_detector_missing_is_clear(monkeypatch, capsys):
    import fer_mask_ros.cli.commands.bench as bench

    monkeypatch.setattr(bench, "_detector_module", lambda: None)
    assert main(["bench", "--detector"]) == 2
    assert "bench/detector" in capsys.readouterr().err


def test_bench_analyze_table_counts_scans(capsys):
    rc = main(["bench", "--analyze", "--analyze-seconds", "0.5", "--analyze-intervals", "0,0.1"])
    assert rc == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0")]
    assert len(rows) == 2
    every, windowed = ([c.strip() for c in row.strip("|").split("|")] for row in rows)
    assert every[1] == windowed[1] == "15"  # frames
    assert (every[5], every[6]) == ("15", "0")  # interval 0: a full scan on every frame
    assert int(windowed[5]) < 15 and int(windowed[5]) + int(windowed[6]) == 15
    assert float(every[4].rstrip("x")) > 0


def test_bench_analyze_bad_intervals(capsys):
    assert main(["bench", "--analyze", "--analyze-intervals", "-1"]) != 0
    assert "--analyze-intervals" in capsys.readouterr().err
