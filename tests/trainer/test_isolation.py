"""trainer/ is a plain PyTorch library: importing it never imports Django or the web app."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_trainer_never_imports_django():
    code = (
        "import sys, pkgutil, importlib, trainer\n"
        "for m in pkgutil.walk_packages(trainer.__path__, 'trainer.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('django', 'webapp'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={"PATH": ""}
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_trainer_source_mentions_django():
    for path in (ROOT / "trainer").rglob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path
        assert "from webapp" not in text and "import webapp" not in text, path


def test_trainer_passes_mypy():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "trainer", "--ignore-missing-imports"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
