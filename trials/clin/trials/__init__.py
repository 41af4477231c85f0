"""Trial protocols (ADAPT, GEN-ENV, GEN-TASK), the runner that drives the agent through
them, and ``run_session`` (one ``clin run`` wired to real parts)."""

from .runner import AdaptConfig, RunSummary, run_adapt
from .session import RunRequest, run_session

__all__ = ["AdaptConfig", "RunRequest", "RunSummary", "run_adapt", "run_session"]
