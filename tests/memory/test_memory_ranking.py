"""Recall ranking: stemming, BM25 over the scope's candidates, ancestor lookups."""

from __future__ import annotations

from clin.memory import Abstraction, Memory, ParseReport, Scope
from clin.memory.ranking import ancestor_keys, bm25_scores, stem, terms


def test_stem_matches_common_inflections() -> None:
    pairs = [("watering", "water"), ("water", "water"), ("plants", "plant"),
             ("planting", "plant"), ("opened", "open"), ("planned", "plan"),
             ("boxes", "box"), ("freezing", "freez"), ("freeze", "freez"), ("glass", "glass"),
             ("carries", "carry"), ("tried", "try")]
    assert [stem(a) for a, _ in pairs] == [b for _, b in pairs]


def test_terms_drop_the_words_of_the_causal_forms() -> None:
    assert terms("Watering the plant SHOULD BE NECESSARY to growing it") == (
        "water", "plant", "grow")


def test_bm25_prefers_rarer_and_repeated_terms() -> None:
    docs = ["open door", "open window", "take key near door door", "sit"]
    s = bm25_scores("door key", docs)
    assert s[2] > s[0] > 0 and s[1] == s[3] == 0.0
    assert bm25_scores("the to", docs) == [0.0] * 4


def test_ancestor_keys_cover_every_broader_combination() -> None:
    keys = ancestor_keys(Scope(env="e", task="t", variation="v"))
    assert len(keys) == 8 and ("e", "t", "v") in keys and ("", "", "") in keys
    assert ancestor_keys(Scope(task="t")) == [("", "t", ""), ("", "", "")]
    assert len(ancestor_keys(Scope(env="", task="t"))) == 2  # '' and NULL share one lookup


def test_recall_orders_by_specificity_then_relevance(mem: Memory) -> None:
    scope = Scope(task="garden", variation="1")

    def add(s: Scope, *pairs: tuple[str, str]) -> None:
        mem.apply_reflection(s, ParseReport(accepted=[
            Abstraction(cause=c, effect=e, relation="necessary", confidence="may")
            for c, e in pairs]))

    add(scope, ("opening the shed", "finding tools"), ("watering the plant", "growing it"))
    add(scope.model_copy(update={"variation": None}), ("watering the seed", "growing it"))
    got = [x.cause for x in mem.recall(scope, "water plants")]
    assert got == ["watering the plant", "opening the shed", "watering the seed"]
    assert [x.cause for x in mem.recall(scope, "water plants", k=1)] == ["watering the plant"]
    assert [x.cause for x in mem.recall(scope, "the to")] == [
        x.cause for x in mem.recall(scope)]


def test_recall_of_a_large_scope_with_a_query(mem: Memory) -> None:
    scope = Scope(task="big")
    mem.apply_reflection(scope, ParseReport(accepted=[
        Abstraction(cause=f"step {i}", effect="goal", relation="necessary", confidence="may")
        for i in range(1200)]))
    got = mem.recall(scope, "step goal")
    assert len(got) == 1200 and len({x.id for x in got}) == 1200
    assert [x.cause for x in mem.recall(scope, "77", k=3)] == ["step 77", "step 0", "step 1"]
