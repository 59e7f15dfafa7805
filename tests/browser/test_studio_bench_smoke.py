"""The studio benchmark (benchmarks/studio_bench.py) runs end to end at tiny sizes, so that it
cannot rot: its own throwaway installation, real Chromium, every figure measured, every save
of one change sent as one request holding that change. The figures themselves are not judged
here (CI's timings mean nothing); docs/benchmarks.md has the real run's."""

import importlib
import json
import subprocess
import sys

import pytest

from tests.live import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_studio_benchmark_explains_itself():
    module = importlib.import_module("benchmarks.studio_bench")
    assert callable(module.main)
    assert module.__doc__.startswith("Benchmark:")


def test_studio_benchmark_runs_at_tiny_sizes(tmp_path):
    out = tmp_path / "studio.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "studio_bench.py"), "--quick", "--json", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "every save sent one change" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    figures = report["figures"]
    assert set(figures) == {"boxes", "polygons"}
    for entry in figures.values():
        for side in ("reference", "measured"):
            assert set(entry[side]) >= {"zoom frame p95", "pan frame p95", "next image → frame"}
            for name, value in entry[side].items():
                assert 0 < value < 60_000, (entry["name"], side, name, value)
    # The heavy pages really held their shapes (40 boxes, 8 polygons at --quick).
    profiles = {key: runs[0]["profile"] for key, runs in report["runs"].items()}
    assert profiles["boxes"]["annotations"] == 40
    assert profiles["polygons"]["annotations"] == 8
    assert profiles["detection-empty"]["annotations"] == 0
