"""``CLINStore``: LangGraph's store operations, sync and async, over a CLIN memory file, and
the example graph that reads and writes memory through it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("langgraph.store.base")

from langgraph.store.base import BaseStore, InvalidNamespaceError

from clin.memory import Memory, NotALearning, Scope
from clin.memory.langgraph import NOT_A_VALUE, CLINStore, to_scope

ROOT = Path(__file__).resolve().parents[2]
NS = ("demo", "bot", "kitchen", "make tea")
BOIL = "boiling water SHOULD BE NECESSARY to making tea"
SUGAR = "adding sugar DOES NOT CONTRIBUTE to making tea"


@pytest.fixture
def store(tmp_path: Path):
    s = CLINStore(tmp_path / "lg.db")
    yield s
    s.close()


def test_is_a_base_store_and_namespaces_are_scopes() -> None:
    assert issubclass(CLINStore, BaseStore)
    assert to_scope(NS) == Scope(namespace="demo", agent="bot", env="kitchen", task="make tea")
    assert to_scope(("demo",)) == Scope(namespace="demo")
    assert to_scope(("demo", "bot", "*", "make tea")).env is None
    with pytest.raises(InvalidNamespaceError):
        to_scope(("a", "b", "c", "d", "e", "f"))
    with pytest.raises(InvalidNamespaceError):
        to_scope(("*", "bot"))


def test_put_get_search_delete_list(store: CLINStore, tmp_path: Path) -> None:
    store.put(NS, "boil", {"text": BOIL, "source": "attempt 1"})
    store.put(NS, "sugar", {"memory": "adding sugar does not contribute to making tea."})
    store.put(("demo", "bot"), "help", {"text": "asking MAY BE NECESSARY to finishing tasks"})

    item = store.get(NS, "boil")
    assert item is not None and item.key == "boil" and item.namespace == NS
    assert item.value["text"] == BOIL and item.value["source"] == "attempt 1"
    assert item.value["relation"] == "necessary" and item.value["confidence"] == "should"
    assert store.get(NS, "sugar").value["text"] == SUGAR  # parsed, stored canonical
    assert store.get(NS, "nope") is None
    assert store.get(("demo", "bot", "kitchen", "other"), "boil") is None

    found = store.search(NS, query="sugar")
    assert [i.key for i in found] == ["sugar", "boil", "help"]  # own scope first, by recall
    assert found[0].score > found[1].score
    assert [i.key for i in store.search(NS, query="sugar", limit=1, offset=1)] == ["boil"]
    assert [i.key for i in store.search(NS, filter={"relation": "does-not-contribute"})] == [
        "sugar"]
    assert [i.key for i in store.search(NS, filter={"support": {"$gte": 0}})] != []
    # a shorter prefix also lists the narrower scopes' learnings (LangGraph's prefix search)
    assert {i.key for i in store.search(("demo",))} == {"boil", "sugar", "help"}
    assert store.search(("other",)) == []

    assert store.list_namespaces() == [("demo", "bot"), NS]
    assert store.list_namespaces(prefix=("demo", "bot"), max_depth=3) == [
        ("demo", "bot"), ("demo", "bot", "kitchen")]
    assert store.list_namespaces(suffix=("make tea",)) == [NS]
    assert store.list_namespaces(prefix=("demo", "*", "kitchen")) == [NS]

    store.delete(NS, "sugar")
    assert store.get(NS, "sugar") is None
    assert "sugar" not in {i.key for i in store.search(NS)}
    with Memory(tmp_path / "lg.db") as mem:  # retired, not deleted: its history says so
        (lr,) = [x for x in mem.learnings(to_scope(NS), include_retired=True)
                 if x.text == SUGAR]
        assert lr.status == "retired"
        assert [e["event"] for e in mem.history(lr.id)] == ["added", "retired"]


def test_put_refuses_what_is_not_a_learning(store: CLINStore) -> None:
    with pytest.raises(NotALearning, match="not a causal learning: 'tea is nice'"):
        store.put(NS, "k", {"text": "tea is nice"})
    with pytest.raises(ValueError) as refused:
        store.put(NS, "k", {"note": "hello"})
    assert str(refused.value) == NOT_A_VALUE
    with pytest.raises(ValueError, match="CLINStore keeps causal learnings"):
        store.put(NS, "k", BOIL)  # type: ignore[arg-type]  # a value must be a dict
    assert store.get(NS, "k") is None
    assert store.search(NS) == []


def test_put_again_replaces_the_keys_learning(store: CLINStore) -> None:
    store.put(NS, "k", {"text": BOIL})
    first = store.get(NS, "k")
    store.put(NS, "k", {"text": SUGAR})
    again = store.get(NS, "k")
    assert again.value["text"] == SUGAR and again.created_at == first.created_at
    assert [i.value["text"] for i in store.search(NS)] == [SUGAR]  # the old one retired


def test_reflected_learnings_are_searchable_and_deletable(store: CLINStore,
                                                          tmp_path: Path) -> None:
    scope = to_scope(NS)
    with Memory(tmp_path / "lg.db") as mem:
        mem.record_trial(scope, [("boil water", "The kettle whistles.")], 100)
        mem.reflect(scope, llm=lambda prompt: BOIL)
        (lid,) = [x.id for x in mem.recall(scope)]
    (item,) = store.search(NS)
    assert item.key == f"learning:{lid}" and item.namespace == NS
    assert item.value["support"] == 1
    assert store.list_namespaces() == [NS]  # its scope, though no key names it
    assert store.get(NS, f"learning:{lid}").value["text"] == BOIL
    store.delete(NS, f"learning:{lid}")
    assert store.search(NS) == []
    huge = "learning:" + "9" * 30  # no SQLite row id: an ordinary key nothing holds
    assert store.get(NS, huge) is None
    store.delete(NS, huge)


def test_async_forms_run_the_same_core(store: CLINStore) -> None:
    async def body() -> None:
        await store.aput(NS, "boil", {"text": BOIL})
        item = await store.aget(NS, "boil")
        assert item is not None and item.value["text"] == BOIL
        await asyncio.gather(*(store.aput(NS, f"k{i}", {
            "text": f"step {i} MAY BE NECESSARY to making tea"}) for i in range(5)))
        assert len(await store.asearch(NS, query="step")) == 6
        assert await store.alist_namespaces() == [NS]
        await store.adelete(NS, "boil")
        assert await store.aget(NS, "boil") is None
        with pytest.raises(NotALearning):
            await store.aput(NS, "bad", {"text": "tea is nice"})

    asyncio.run(asyncio.wait_for(body(), timeout=60))


def test_the_store_shares_the_file_with_the_memory(tmp_path: Path) -> None:
    """The store's table is its own migration: the memory's file stays a memory file."""
    db = tmp_path / "shared.db"
    with Memory(db) as mem:
        mem.add_learning(Scope(namespace="demo", agent="bot"), BOIL)
    store = CLINStore(db)
    try:
        assert [i.value["text"] for i in store.search(("demo", "bot"))] == [BOIL]
        store.put(("demo", "bot"), "s", {"text": SUGAR})
    finally:
        store.close()
    with Memory(db) as mem:
        assert {x.text for x in mem.recall(Scope(namespace="demo", agent="bot"))} == {
            BOIL, SUGAR}
        names = {r[0] for r in mem.db.execute("SELECT name FROM _clin_migrations")}
        assert "langgraph.m001_items" in names


def test_example_graph_runs_and_learns(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "langgraph_store.py"), "--db",
         str(tmp_path / "tea.db")], capture_output=True, text=True, timeout=120,
        check=False, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("attempt 1: score 100 in 4 steps")
    assert lines[1] == "attempt 2: score 100 in 2 steps: boil water, pour water over the tea bag"
    assert "add-sugar: add sugar DOES NOT CONTRIBUTE to making tea" in out.stdout
