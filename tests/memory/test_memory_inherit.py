"""Inherited learnings: a scope's own copy of what it inherits, revised by its own reflections
while the original (what every other scope sees) stays as it was."""

from __future__ import annotations

from clin.controller import render_memory
from clin.memory import Memory, Scope, parse_learnings

TASK = Scope(namespace="ns", env="sw", task="boil")
VAR = TASK.model_copy(update={"variation": "3"})
SIBLING = TASK.model_copy(update={"variation": "4"})
META = "using the stove SHOULD BE NECESSARY to boiling water"
OTHER = "opening the freezer DOES NOT CONTRIBUTE to boiling water"


def _meta(mem: Memory) -> int:
    mem.apply_reflection(TASK, parse_learnings(META), score=50)
    return mem.recall(TASK)[0].id


def _original(mem: Memory, lid: int) -> dict:
    return mem.db.execute("SELECT status, confidence, text, support FROM learnings WHERE id = ?",
                          [lid]).fetchone()


def test_copy_stands_in_for_the_original(mem: Memory) -> None:
    lid = _meta(mem)
    copies = mem.inherit(VAR)
    assert len(copies) == 1
    seen = mem.recall(VAR)
    assert [(lr.id, lr.inherited_from, lr.inherited_level) for lr in seen] == [
        (copies[0], lid, "task")]
    assert mem.inherit(VAR) == []  # idempotent
    assert [lr.id for lr in mem.recall(SIBLING)] == [lid]  # siblings still see the original
    assert mem.history(copies[0])[0]["event"] == "inherited"


def test_contradiction_retires_the_copy_only(mem: Memory) -> None:
    lid = _meta(mem)
    before = _original(mem, lid)
    (copy,) = mem.inherit(VAR)
    out = mem.apply_reflection(
        VAR, parse_learnings("using the stove DOES NOT CONTRIBUTE to boiling water"), score=0)
    assert out.retired == 1
    assert mem.db.execute("SELECT status FROM learnings WHERE id = ?", [copy]).fetchone()[0] \
        == "retired"
    texts = [lr.text for lr in mem.recall(VAR)]
    assert META not in texts  # neither the retired copy nor the original shows here
    assert _original(mem, lid) == before  # the meta-memory is untouched
    assert [lr.id for lr in mem.recall(SIBLING)] == [lid]
    assert mem.inherit(VAR) == []  # a retired copy is not inherited again


def test_omission_demotes_the_copy_only(mem: Memory) -> None:
    lid = _meta(mem)
    before = _original(mem, lid)
    (copy,) = mem.inherit(VAR)
    assert mem.apply_reflection(VAR, parse_learnings(OTHER), score=0).demoted == 1
    row = mem.db.execute("SELECT confidence, status FROM learnings WHERE id = ?",
                         [copy]).fetchone()
    assert tuple(row) == ("may", "active")
    assert _original(mem, lid) == before


def test_render_labels_inherited_learnings(mem: Memory) -> None:
    _meta(mem)
    env_scope = Scope(namespace="ns", env="sw")
    kitchen = "teleporting to the kitchen MAY BE NECESSARY to finding a stove"
    mem.apply_reflection(env_scope, parse_learnings(kitchen), score=50)
    mem.inherit(VAR)
    mem.apply_reflection(VAR, parse_learnings(f"{OTHER}\n{META}\n{kitchen}"), score=50)
    block = render_memory(mem.recall(VAR), VAR, 800)
    lines = block.text.splitlines()
    own = lines.index("[1] opening the freezer DOES NOT CONTRIBUTE to boiling water")
    task = next(i for i, ln in enumerate(lines) if ln.startswith("From other variations"))
    tasks = next(i for i, ln in enumerate(lines) if ln.startswith("From other tasks"))
    assert own < task < tasks
    assert lines[task + 1] == f"[2] {META}"  # kept copy: still labelled inherited
    assert lines[tasks + 1].startswith("[3] teleporting to the kitchen")
    assert len(block.ids) == 3 and block.resolve([2]) == [
        lr.id for lr in mem.recall(VAR) if lr.text == META]
