"""Imports run one way (prompts <- memory, envs <- clin agent <- trials <- cli), and CLIN works
from a directory that holds the user's own ``memory.py`` and ``prompts/`` package."""

from __future__ import annotations

import ast
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.project import ROOT, ROOTS, package_folder

# Each component's folder is the root of its part of the `clin` namespace: clin.memory lives
# in memory/clin/memory/, the agent's own modules (package "clin") in clin/clin/.
FOLDERS = {("clin" if root == "clin" else f"clin.{root}"): package_folder(root)
           for root in ROOTS}
# The top-level names these folders had before the clin namespace: importing one of them
# would pick up a user's module of that name.
BARE = ("memory", "envs", "prompts", "trials", "cli", "viewer")


def imports_of(package: str) -> dict[str, set[str]]:
    """Every module each file of ``package`` imports, anywhere in the file (function-local
    imports too), relative imports resolved to absolute names."""
    folder = ROOT / FOLDERS[package]
    out: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder).with_suffix("").parts
        is_pkg = rel[-1] == "__init__"
        module_parts = [*package.split("."), *(rel[:-1] if is_pkg else rel)]
        pkg_parts = module_parts if is_pkg else module_parts[:-1]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg_parts[: len(pkg_parts) - node.level + 1]
                    mod = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    mod = node.module or ""
                names.add(mod)
                names.update(f"{mod}.{a.name}" for a in node.names)  # from pkg import module
        out[str(path.relative_to(ROOT))] = names
    return out


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_imports_of_resolves_relative_and_local_imports(tmp_path: Path) -> None:
    """The checker itself: it sees what the layer tests rely on it to see."""
    found = imports_of("clin.trials")
    assert "clin.trials.runner" in found["trials/clin/trials/session.py"]  # from .runner import ...
    assert "clin.envs.registry" in found["trials/clin/trials/eval.py"]  # a function-local import
    agent = imports_of("clin")
    assert "clin.llm.base" in agent["clin/clin/agent.py"]  # from .llm.base import ...
    assert "clin.errors" in agent["clin/clin/llm/retry.py"]  # from ..errors import ...


def test_agent_imports_nothing_from_trials_or_cli() -> None:
    bad = {f: sorted(n for n in names if _under(n, ("clin.trials", "clin.cli", *BARE)))
           for f, names in imports_of("clin").items()}
    assert {f: n for f, n in bad.items() if n} == {}


# What each bottom layer may import of clin besides itself: the memory renders its reflection
# prompt with the one prompt loader (clin.prompts imports nothing of clin).
BELOW = {"clin.memory": ("clin.prompts",), "clin.envs": (), "clin.prompts": ()}


@pytest.mark.parametrize("package", sorted(BELOW))
def test_bottom_layers_import_no_other_part_of_clin(package: str) -> None:
    own = (package, *BELOW[package])
    # ("clin" alone is the namespace root of ``from clin import prompts``; what it imports
    # from there is listed as clin.prompts and checked)
    bad = {f: sorted(n for n in names if (_under(n, ("clin",)) and n != "clin"
                                          and not _under(n, own))
                     or _under(n, BARE))
           for f, names in imports_of(package).items()}
    assert {f: n for f, n in bad.items() if n} == {}


def test_trials_import_no_cli() -> None:
    bad = {f: sorted(n for n in names if _under(n, ("clin.cli", *BARE)))
           for f, names in imports_of("clin.trials").items()}
    assert {f: n for f, n in bad.items() if n} == {}


def test_localserver_imports_only_the_standard_library() -> None:
    tree = ast.parse((ROOT / "clin" / "clin" / "localserver.py").read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {n.split(".")[0] for n in names} <= set(sys.stdlib_module_names) | {"__future__"}


def test_viewer_reads_the_database_and_imports_only_the_memory() -> None:
    """The viewer (under cli) sees the agent's work only through SQL: it imports no agent,
    environment or trials code (only the standard-library-only server hardening), and nothing
    below it imports the viewer."""
    own = ("clin.viewer", "clin.memory", "clin.localserver")
    bad = {f: sorted(n for n in names if (_under(n, ("clin",)) and not _under(n, own))
                     or _under(n, BARE))
           for f, names in imports_of("clin.viewer").items()}
    assert {f: n for f, n in bad.items() if n} == {}
    for package in ("clin", "clin.memory", "clin.envs", "clin.trials"):
        users = [f for f, names in imports_of(package).items()
                 if any(_under(n, ("clin.viewer",)) for n in names)]
        assert users == [], package


# ------------------------------------------------------------- a user's own memory.py
USER_MODULE = '''"""The user's own {name}: CLIN must never import it."""
from pathlib import Path

Path(__file__).resolve().parent.joinpath("IMPORTED-{name}").touch()


class Memory:
    pass


def render(*args, **kwargs):
    raise RuntimeError("the user's {name} was used")
'''


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A directory like an agent project's: its own memory.py and prompts/__init__.py."""
    (tmp_path / "memory.py").write_text(USER_MODULE.format(name="memory.py"))
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "__init__.py").write_text(
        USER_MODULE.format(name="prompts/__init__.py").replace(
            'joinpath("IMPORTED-prompts/__init__.py")', 'parent.joinpath("IMPORTED-prompts")'))
    # the user's modules do get imported from there, so the markers below can fail
    probe = subprocess.run([sys.executable, "-c", "import memory, prompts"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=False)
    assert probe.returncode == 0, probe.stderr
    markers = sorted(p.name for p in tmp_path.glob("IMPORTED-*"))
    assert markers == ["IMPORTED-memory.py", "IMPORTED-prompts"]
    for m in tmp_path.glob("IMPORTED-*"):
        m.unlink()
    return tmp_path


def _no_user_module_imported(project: Path) -> None:
    assert sorted(p.name for p in project.glob("IMPORTED-*")) == []


def test_readme_example_beside_a_users_memory_py(user_project: Path) -> None:
    # run from the project's own folder, as a user's script would: the folder is sys.path[0]
    shutil.copy(ROOT / "examples" / "readme_example.py", user_project / "example.py")
    out = subprocess.run([sys.executable, "example.py"], cwd=user_project,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == (
        "added=3 kept=0 promoted=0 demoted=0 retired=0 rejected=0")
    assert "[1] pouring water over the tea bag SHOULD BE NECESSARY to making tea" in out.stdout
    _no_user_module_imported(user_project)


# `clin run` with the current directory first on sys.path (`python -c` puts it there), playing
# TinyWorld (--env tiny) instead of starting a JVM: the environment is not what this test is about.
CLIN_RUN = """
import sys
from clin.cli import main
code = main(sys.argv[1:])
assert sys.path[0] == "", sys.path[:2]
assert "memory" not in sys.modules and "prompts" not in sys.modules, "user modules loaded"
import clin.memory
print("clin.memory from", clin.memory.__file__)
sys.exit(code)
"""


def test_clin_run_beside_a_users_memory_py(user_project: Path) -> None:
    with FakeOpenAI() as srv:
        out = subprocess.run(
            [sys.executable, "-c", CLIN_RUN, "run", "--env", "tiny", "--task", "find-living-thing",
             "--trials", "1", "--max-steps", "2", "--model", "openai:fake",
             "--base-url", srv.url, "--db", "clin.db"],
            cwd=user_project, capture_output=True, text=True, timeout=120, check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(user_project), "NO_COLOR": "1",
                 "OPENAI_API_KEY": "sk-test"},
        )
        requests = srv.requests
    assert out.returncode == 0, out.stderr
    assert requests == 3  # two proposals and one reflection, from the real agent loop
    _no_user_module_imported(user_project)
    used = out.stdout.strip().splitlines()[-1]
    assert used.startswith("clin.memory from ")
    real = Path(used.removeprefix("clin.memory from "))
    assert real.name == "__init__.py" and user_project not in real.parents
    conn = sqlite3.connect(user_project / "clin.db")
    try:
        assert conn.execute("SELECT status, steps FROM trials").fetchall() == [("completed", 2)]
        assert conn.execute("SELECT count(*) FROM learnings").fetchone()[0] > 0
    finally:
        conn.close()


def test_agent_memory_and_prompts_name_no_environment() -> None:
    """What a world is lives in its env's profile (clin.envs): the agent, the memory library
    and the prompt files name none (issue 18)."""
    names = ("scienceworld", "science world", "textworld", "tinyworld", "twx")
    hits = [f"{path.relative_to(ROOT)}: {word}"
            for folder in ("clin", "memory", "prompts")
            for path in sorted((ROOT / folder).rglob("*")) if path.suffix in (".py", ".j2")
            for word in names if word in path.read_text().lower()]
    assert hits == []


def test_static_export_does_not_load_datasette() -> None:
    """``clin report --html`` writes files; only ``clin view`` serves them with Datasette."""
    code = ("import sys, clin.viewer, clin.viewer.export; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('datasette', 'uvicorn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"
