"""Planning is pure: which episodes and meta-memories each protocol runs, and at which scopes
(no simulator needed: a fake split)."""

from __future__ import annotations

import pytest

from clin.errors import UserError
from clin.trials.protocols import PAPER_TASKS, EvalConfig, plan, validate


def split(task: str, which: str) -> list[int]:
    return [0, 1, 2, 3] if which == "train" else [10, 11, 12]


def test_default_task_set_is_the_papers_18() -> None:
    cfg = EvalConfig()
    assert cfg.tasks == list(PAPER_TASKS) and len(PAPER_TASKS) == 18
    assert (cfg.simplification, cfg.trials) == ("easy", 5)


def test_adapt_plans_test_variations_only() -> None:
    p = plan(EvalConfig(protocol="adapt", tasks=["boil", "freeze"], test_variations=2), "ns",
             split)
    assert [e.key for e in p.episodes] == ["adapt/boil/10", "adapt/boil/11",
                                           "adapt/freeze/10", "adapt/freeze/11"]
    assert p.metas == [] and p.train == []


def test_gen_env_meta_is_task_scoped_and_fed_by_that_tasks_training() -> None:
    p = plan(EvalConfig(protocol="gen-env", tasks=["boil", "freeze"], train_variations=2,
                        test_variations=1), "ns", split)
    assert [e.key for e in p.train] == ["train/boil/0", "train/boil/1", "train/freeze/0",
                                        "train/freeze/1"]
    boil = p.metas[0]
    assert boil.source_keys == ["train/boil/0", "train/boil/1"]
    meta_scope, test_scope = boil.scope("clin", "scienceworld"), p.test[0].scope("clin", "scienceworld")
    assert (meta_scope.task, meta_scope.variation) == ("boil", None)
    assert test_scope.broader() == meta_scope  # recall of the test variation sees it


def test_gen_task_meta_is_env_scoped_and_fed_by_the_other_tasks() -> None:
    p = plan(EvalConfig(protocol="gen-task", tasks=["boil", "freeze", "melt"],
                        train_variations=1), "ns", split)
    freeze = next(m for m in p.metas if m.key == "gen-task/freeze")
    assert freeze.source_keys == ["train/boil/0", "train/melt/0"]
    scope = freeze.scope("clin", "scienceworld")
    assert (scope.namespace, scope.env, scope.task) == ("ns/to-freeze", "scienceworld", None)
    test = next(e for e in p.test if e.task == "freeze").scope("clin", "scienceworld")
    assert test.broader().broader() == scope
    # each target has its own env-level meta-memory, invisible to the other targets
    assert len({m.namespace for m in p.metas}) == 3


def test_gen_task_with_source_tasks() -> None:
    p = plan(EvalConfig(protocol="gen-task", tasks=["freeze"], source_tasks=["boil"],
                        train_variations=2), "ns", split)
    assert p.metas[0].source_keys == ["train/boil/0", "train/boil/1"]


@pytest.mark.parametrize(("cfg", "message"), [
    (EvalConfig(tasks=["boil", "bake"]), "unknown task(s): bake"),
    (EvalConfig(protocol="gen-task", tasks=["boil"]), "gen-task needs at least two --tasks"),
    (EvalConfig(protocol="gen-env", train_variations=0), "--train-variations must be"),
    (EvalConfig(trials=0), "--trials must be at least 1"),
])
def test_validate(cfg: EvalConfig, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(cfg, [*PAPER_TASKS])
