"""JSONL export/import round-trips learnings with scope and support, idempotently."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from clin.memory import DatabaseError, Memory, Scope
from clin.memory.jsonl import JsonlError, export_jsonl, import_jsonl

A = Scope(namespace="ns", task="tea", variation="1")
B = Scope(namespace="ns", task="coffee")
TEA = "boiling water SHOULD BE NECESSARY to making tea"
OLD = "adding salt MAY BE NECESSARY to making tea"


def fill(mem: Memory) -> None:
    def llm(answer: str):
        return lambda prompt: answer

    mem.record_trial(A, [("boil water", "hot")], 80)
    mem.reflect(A, llm=llm(f"{TEA}\n{OLD}"))
    mem.record_trial(A, [("boil water", "hot")], 90)
    mem.reflect(A, llm=llm(TEA))  # OLD (MAY) dropped: retired
    mem.record_trial(B, [("grind beans", "ok")], 50)
    mem.reflect(B, llm=llm("grinding beans SHOULD BE NECESSARY to making coffee"))


def dump(mem_or_path, **kw) -> list[dict]:
    buf = io.StringIO()
    n = export_jsonl(mem_or_path, buf, **kw)
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert n == len(rows)
    return rows


def test_export_then_import_round_trips_and_is_idempotent(mem: Memory, tmp_path: Path) -> None:
    fill(mem)
    rows = dump(mem)
    assert [(r["task"], r["text"], r["support"], r["mean_score"]) for r in rows] == [
        ("tea", TEA, 2, 85.0), ("coffee", "grinding beans SHOULD BE NECESSARY to making coffee",
                                1, 50.0)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    with Memory(tmp_path / "copy.db") as other:
        assert import_jsonl(other, io.StringIO(text)) == 2
        assert import_jsonl(other, io.StringIO(text)) == 0
        assert [x.text for x in other.recall(A)] == [TEA]
        assert other.recall(A)[0].support == 2
        assert dump(other) == rows
        events = [r["event"] for r in other.db.query("SELECT event FROM learning_events")]
        assert events == ["imported", "imported"]


def test_export_filters_by_subtree_and_can_include_retired(mem: Memory) -> None:
    fill(mem)
    assert {r["task"] for r in dump(mem, scope=Scope(namespace="ns"))} == {
        "tea", "coffee"}
    assert [r["text"] for r in dump(mem, scope=Scope(namespace="ns", task="tea"))] == [TEA]
    retired = [r for r in dump(mem, include_retired=True) if r["status"] == "retired"]
    assert [r["text"] for r in retired] == [OLD]
    assert dump(mem, scope=Scope(namespace="other")) == []


def test_export_from_a_path_opens_read_only(db_path: Path) -> None:
    with Memory(db_path) as mem:
        fill(mem)
    before = (db_path.read_bytes(), db_path.stat().st_mtime_ns)
    os.chmod(db_path, 0o444)  # (root ignores this; the unchanged bytes below do not)
    try:
        assert len(dump(db_path)) == 2
    finally:
        os.chmod(db_path, 0o644)
    assert (db_path.read_bytes(), db_path.stat().st_mtime_ns) == before
    with pytest.raises(DatabaseError, match="does not exist"):
        export_jsonl(db_path.parent / "missing.db", io.StringIO())


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "line 2"),
    ('{"cause": "x", "effect": "y", "relation": "causes", "confidence": "may"}', "relation"),
    ('{"cause": "", "effect": "y", "relation": "necessary", "confidence": "may"}', "cause"),
    (json.dumps({"cause": "x", "effect": "y", "relation": "necessary", "confidence": "may",
                 "support": -1}), "support"),
])
def test_a_bad_line_is_refused_with_its_number(mem: Memory, line: str, message: str) -> None:
    good = json.dumps({"cause": "a b", "effect": "c d", "relation": "necessary",
                       "confidence": "may"})
    with pytest.raises(JsonlError, match=message):
        import_jsonl(mem, io.StringIO(f"{good}\n{line}\n"))
    assert mem.db["learnings"].count == 0  # validated before the batch is written


def test_text_is_rederived_from_its_parts(mem: Memory) -> None:
    line = json.dumps({"namespace": "ns", "task": "tea", "cause": "boiling water",
                       "effect": "making tea", "relation": "necessary", "confidence": "should",
                       "text": "something else entirely"})
    assert import_jsonl(mem, io.StringIO(line + "\n\n")) == 1
    assert mem.recall(Scope(namespace="ns", task="tea"))[0].text == TEA
