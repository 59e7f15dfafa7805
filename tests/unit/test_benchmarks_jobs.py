"""The job benchmark scripts import and explain themselves (they are run by hand, never here)."""

import importlib
import subprocess
import sys

import pytest

from tests.live import ROOT

SCRIPTS = ["jobs_latency", "ws_fanout", "dashboard"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_script_imports_without_starting_anything(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert callable(module.main)
    assert module.__doc__.startswith("Benchmark:")


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_script_prints_its_options(name):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--rounds" in result.stdout


def test_percentile_is_the_nearest_rank():
    from benchmarks.stack import percentile

    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile([7.0], 95) == 7.0
