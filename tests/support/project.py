"""The repository as the project-wide tests read it: its root, pyproject.toml, and the
folders that are the roots of the ``clin`` namespace (pyproject's ``dev-mode-dirs``, the one
list the editable install, pyright and ruff also read)."""

from __future__ import annotations

from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own TOML reader
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ROOTS: list[str] = PYPROJECT["tool"]["hatch"]["build"]["dev-mode-dirs"]


def package_folder(root: str) -> str:
    """The folder of the package a root holds: ``memory`` -> ``memory/clin/memory``; the
    agent's own root ``clin`` holds the modules of package ``clin`` in ``clin/clin``."""
    return "clin/clin" if root == "clin" else f"{root}/clin/{root}"
