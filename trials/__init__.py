"""Trial protocols (ADAPT) and the runner that drives the agent through them."""

from .runner import AdaptConfig, RunSummary, run_adapt

__all__ = ["AdaptConfig", "RunSummary", "run_adapt"]
