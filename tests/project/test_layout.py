"""Every import name is a path: static tools (jedi for editors, pyright, ruff) resolve
``clin.memory.*``, ``clin.trials.*`` and ``clin.envs.*`` to files in the repository, with
nothing but the namespace's roots (pyproject's ``dev-mode-dirs``) and no import hook."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jedi
import pytest

from tests.support.project import PYPROJECT, ROOT, ROOTS

PROBE = """\
from clin.memory import Memory
import clin.trials.eval
import clin.envs.scienceworld
"""
# (line, column) of each name in PROBE, and the file it must resolve to
TARGETS = [((1, 25), "memory/clin/memory/store.py"),
           ((2, 20), "trials/clin/trials/eval.py"),
           ((3, 20), "envs/clin/envs/scienceworld.py")]


def test_every_root_holds_one_part_of_the_clin_namespace() -> None:
    """Each root has ``clin/`` without ``__init__.py`` (a PEP 420 namespace part), and the
    three lists of roots (editable install, pyright, ruff) agree."""
    for name in ROOTS:
        part = ROOT / name / "clin"
        assert part.is_dir(), part
        assert not (part / "__init__.py").exists(), f"{part} would hide the other parts"
    assert PYPROJECT["tool"]["basedpyright"]["extraPaths"] == ROOTS
    assert set(PYPROJECT["tool"]["ruff"]["src"]) >= set(ROOTS)
    sources = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["sources"]
    assert sources == {f"{name}/clin": "clin" for name in ROOTS}


def test_installed_roots_are_plain_paths() -> None:
    """The editable install is a .pth of folders: what sys.path holds is what tools read."""
    for name in ROOTS:
        assert str(ROOT / name) in sys.path, f"{name} is not on sys.path: reinstall (make)"


def test_jedi_goes_to_the_definition(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    script = jedi.Script(PROBE, path=probe, project=jedi.Project(ROOT))
    for (line, column), want in TARGETS:
        found = script.goto(line, column, follow_imports=True)
        assert [d.module_path for d in found] == [ROOT / want], (line, found)


@pytest.mark.skipif(shutil.which("basedpyright", path=str(Path(sys.executable).parent)) is None,
                    reason="basedpyright is in the test extra (make test-setup)")
def test_pyright_resolves_the_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE + "import clin.no_such_module\n")
    exe = Path(sys.executable).parent / "basedpyright"
    out = subprocess.run([str(exe), "-p", str(ROOT / "pyproject.toml"), "--outputjson",
                          str(probe)], capture_output=True, text=True, timeout=240, check=False)
    unresolved = [d["message"] for d in json.loads(out.stdout)["generalDiagnostics"]
                  if d.get("rule") == "reportMissingImports"]
    # the one that must fail does, so the check itself can fail
    assert unresolved == ['Import "clin.no_such_module" could not be resolved']


def test_ruff_sorts_clin_as_first_party(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import json\n\nimport pydantic\n\nfrom clin.memory import Memory\n\n"
                     "print(json, pydantic, Memory)\n")
    exe = Path(sys.executable).parent / "ruff"
    out = subprocess.run([str(exe), "check", "--select", "I", "--config",
                          str(ROOT / "pyproject.toml"), str(probe)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_wheel_merges_the_roots_into_one_clin_folder(tmp_path: Path) -> None:
    """Built with the project's own backend, offline: every module, template and data file
    of every root lands at its import path, and nothing else does (no tests, no bench)."""
    import zipfile

    from hatchling.builders.wheel import WheelBuilder

    (wheel,) = WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])
    names = {n for n in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in n}
    want = {f"clin/{p.relative_to(ROOT / root / 'clin').as_posix()}"
            for root in ROOTS for p in (ROOT / root / "clin").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}
    assert names == want
    assert {"clin/memory/datasette-metadata.json", "clin/prompts/reflect_system.j2",
            "clin/viewer/templates/base.html", "clin/agent.py"} <= names
