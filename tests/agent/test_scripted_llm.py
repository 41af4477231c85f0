"""The scripted test LLM answers by the purpose each call declares, never by prompt text, and
fails loudly on a call its script did not plan for."""

from __future__ import annotations

import pytest

from clin.errors import UnexpectedModelCall
from clin.llm import Message, ScriptedLLM
from clin.llm.base import current_purpose, purpose

ASK = [Message(role="user", content="same words every time")]


def test_a_keyed_script_answers_from_the_declared_purpose_list() -> None:
    llm = ScriptedLLM({"controller": ["c1", "c2"], "reflection": ["r1"]})
    with purpose("controller"):
        assert llm.complete(ASK).text == "c1"
    with purpose("reflection"):
        assert llm.complete(ASK).text == "r1"
    with purpose("controller"):
        assert llm.complete(ASK).text == "c2"
    assert llm.purposes == ["controller", "reflection", "controller"]
    llm.assert_complete()


def test_a_keyed_script_refuses_an_unplanned_or_undeclared_call() -> None:
    llm = ScriptedLLM({"controller": ["c1"], "reflection": ["r1"]})
    with purpose("meta"), pytest.raises(UnexpectedModelCall, match="meta answer"):
        llm.complete(ASK)
    with pytest.raises(UnexpectedModelCall, match="purpose-less answer"):
        llm.complete(ASK)
    with purpose("controller"):
        llm.complete(ASK)
        with pytest.raises(UnexpectedModelCall, match="controller answer 2 but holds 1"):
            llm.complete(ASK)
    with pytest.raises(AssertionError, match=r"unused answers: 1 \({'reflection': 1}\)"):
        llm.assert_complete()


def test_purposes_nest_and_a_list_script_ignores_them() -> None:
    llm = ScriptedLLM(["a", lambda _: f"asked for {current_purpose()}"])
    with purpose("reflection"):
        with purpose("meta"):
            assert llm.complete(ASK).text == "a"
        assert llm.complete(ASK).text == "asked for reflection"
    assert current_purpose() is None
    assert llm.purposes == ["meta", "reflection"]
