"""The fast tier's contract (tests/support/tiers.py): it leaves out every heavy marker, and a
test that starts a JVM, Ray, a browser or the local model anyway fails with the marker to add,
in the test process and in the processes it starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support import tiers
from tests.support.project import PYPROJECT, ROOT


def test_every_declared_marker_is_a_heavy_one_the_fast_tier_leaves_out() -> None:
    ini = PYPROJECT["tool"]["pytest"]
    declared = {m.split(":", 1)[0] for m in ini["ini_options"]["markers"]}
    assert declared == set(tiers.HEAVY_MARKERS)
    assert set(tiers.FIXTURE_MARKERS.values()) <= declared
    assert set(tiers.BLOCKED_MODULES.values()) <= declared


def test_the_guard_blocks_java_and_the_heavy_modules_in_children_too(tmp_path: Path) -> None:
    probe = textwrap.dedent(f"""
        import subprocess, sys
        from pathlib import Path
        from tests.support import tiers
        tiers.install_guard(Path({str(tmp_path)!r}))
        java = subprocess.run(["java", "-version"], capture_output=True, text=True)
        assert java.stdout == java.stderr
        print("java", java.returncode, java.stderr.strip())
        try:
            import ray
        except ModuleNotFoundError as exc:
            print("ray", exc)
        child = subprocess.run([sys.executable, "-c", "import playwright"],
                               capture_output=True, text=True)
        print("child", child.returncode, child.stderr.strip().splitlines()[-1])
    """)
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout.splitlines()
    assert out == [
        f"java {tiers.JAVA_EXIT} " + tiers.refusal("a JVM", "scienceworld (or textworld)"),
        "ray " + tiers.refusal("ray (a local Ray cluster)", "ray"),
        "child 1 ModuleNotFoundError: " + tiers.refusal(
            "playwright (a headless Chromium driven by playwright)", "browser"),
    ]
