"""The ``clin`` command line: a thin layer over library functions (``clin.trials``,
``clin.memory``). Installed as ``clin.cli``; the console script is ``clin = clin.cli:main``."""

from .commands import app, main

__all__ = ["app", "main"]
