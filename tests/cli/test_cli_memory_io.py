"""`clin memory export/import` round-trip learnings through JSONL."""

from pathlib import Path

from clin.cli import main
from clin.memory import Memory, Scope, parse_learnings


def test_export_import_round_trip_is_idempotent(tmp_path: Path, capsys) -> None:
    src, dst, out = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "l.jsonl"
    with Memory(src) as m:
        m.apply_reflection(
            Scope(env="scienceworld", task="boil", variation="0"),
            parse_learnings("heating the pot SHOULD BE NECESSARY to boiling water\n"
                            "going outside DOES NOT CONTRIBUTE to boiling water"),
        )
    before = src.read_bytes()
    assert main(["memory", "export", str(out), "--db", str(src)]) == 0
    assert src.read_bytes() == before  # export opens the database read-only
    assert len(out.read_text().splitlines()) == 2
    assert main(["memory", "import", str(out), "--db", str(dst)]) == 0
    assert main(["memory", "import", str(out), "--db", str(dst)]) == 0
    assert "imported 0 new learnings" in capsys.readouterr().out
    with Memory(dst) as m:
        texts = sorted(x.text for x in m.recall(Scope(env="scienceworld", task="boil",
                                                     variation="0")))
    assert texts == ["going outside DOES NOT CONTRIBUTE to boiling water",
                     "heating the pot SHOULD BE NECESSARY to boiling water"]


def test_import_of_a_missing_file_is_a_user_error(tmp_path: Path, capsys) -> None:
    assert main(["memory", "import", str(tmp_path / "nope.jsonl"),
                 "--db", str(tmp_path / "x.db")]) == 2
    assert capsys.readouterr().err.strip().startswith("error:")


def test_ctrl_c_exits_130_without_a_traceback(monkeypatch, capsys) -> None:
    from clin.cli import commands as cli

    def interrupted(**_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    assert main(["tasks"]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_typer_exiting_130_is_an_interruption(monkeypatch) -> None:
    """typer in standalone mode turns Ctrl-C into ``sys.exit(130)``."""
    from clin.cli import commands as cli

    def exits(**_kw):
        raise SystemExit(130)

    monkeypatch.setattr(cli, "app", exits)
    assert main(["tasks"]) == 130


def test_ctrl_c_during_clin_run_gives_the_resume_hint(monkeypatch, tmp_path: Path,
                                                      capsys) -> None:
    from clin.trials import session

    def interrupted(*_a, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(session, "run_session", interrupted)
    assert main(["run", "--task", "boil", "--db", str(tmp_path / "x.db")]) == 130
    err = capsys.readouterr().err
    assert "interrupted: finished trials are kept" in err and "--resume" in err
