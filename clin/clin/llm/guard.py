"""A switch tests turn off so no test reaches a real model by accident (the pydantic-ai
pattern). Tests that mean to use the local model or a local server opt in."""

from ..errors import ClinError

ALLOW_MODEL_REQUESTS = True


class ModelRequestsDisabled(ClinError):
    pass


def check_allowed(name: str) -> None:
    if not ALLOW_MODEL_REQUESTS:
        raise ModelRequestsDisabled(
            f"real model {name} called while clin.llm.guard.ALLOW_MODEL_REQUESTS is False "
            "(use the allow_model_requests fixture)"
        )
