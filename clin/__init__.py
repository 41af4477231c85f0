"""CLIN: a language agent that learns causal abstractions across trials, without weight
updates. See ``clin.agent`` for one trial, ``trials`` for protocols, ``memory`` for storage."""

__version__ = "0.1.0"
