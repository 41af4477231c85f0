"""CLIN's error types. ``UserError`` and its subclasses are the user's to fix: the CLI prints
their message on one line and exits with code 2. Anything else is a bug and shows a traceback."""


class ClinError(Exception):
    """Base class for CLIN errors."""


class UserError(ClinError):
    """Bad input or setup the user can fix (unknown task, bad model spec, missing Java...)."""


class ModelSpecError(UserError):
    pass


class LLMError(ClinError):
    """The LLM call failed."""


class LLMUnavailable(LLMError, UserError):
    """A permanent LLM failure (unreachable endpoint, bad key, unknown model, context too
    long): retrying will not help, the user must change something."""


class TransientLLMError(LLMError):
    """A failure worth retrying (timeout, 429, 5xx, empty answer)."""


class UnexpectedModelCall(ClinError):
    """A scripted test LLM was asked more than its script holds."""


class GroundingError(ClinError):
    """The proposed action could not be matched to a valid action. The message is what the
    re-ask shows the LLM."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates
