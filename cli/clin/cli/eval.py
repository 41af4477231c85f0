"""``clin eval`` and ``clin report``: thin commands over :mod:`clin.trials.eval` and
:mod:`clin.trials.report`. User errors raise :class:`UserError` (one line, exit code 2)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from clin.errors import UserError

from .options import MODEL_SPECS, BaseUrlOpt, DbOpt
from .output import progress_bar

if TYPE_CHECKING:
    from clin.trials.eval import EvalSummary, Execution
    from clin.trials.protocols import EvalConfig

out = Console()
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _default_tasks(env: str, options: dict) -> list[str]:
    """The CLIN paper's 18 ScienceWorld tasks, or every task of another environment."""
    from clin.envs.registry import make
    from clin.trials.protocols import PAPER_TASKS

    if env == "scienceworld":
        return list(PAPER_TASKS)
    world = make(env, **options)
    try:
        return [t.name for t in world.tasks()]
    finally:
        world.close()


def _tasks(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [t.strip() for t in value.split(",") if t.strip()]
    if not names:
        raise UserError("--tasks is empty: give task names separated by commas")
    return names


def eval_cmd(
    protocol: Annotated[str, typer.Option(help="adapt | gen-env | gen-task")] = "adapt",
    tasks: Annotated[
        str | None,
        typer.Option(help="Comma-separated tasks (default: the CLIN paper's 18)."),
    ] = None,
    source_tasks: Annotated[
        str | None,
        typer.Option(help="gen-task: tasks whose episodes feed the meta-memory "
                     "(default: the other --tasks)."),
    ] = None,
    train_variations: Annotated[int, typer.Option(help="GEN: training variations per task.")] = 3,
    test_variations: Annotated[int, typer.Option(help="Test variations per task.")] = 1,
    trials: Annotated[int, typer.Option(help="Trials per episode.")] = 5,
    max_steps: Annotated[int, typer.Option(help="Step limit per trial (with gold1.5: the "
                                           "most any trial gets).")] = 100,
    step_budget: Annotated[
        str, typer.Option(help="gold1.5: stop a trial at 1.5 x the simulator's gold path "
                          "length, as the CLIN authors did (default); fixed: --max-steps.")
    ] = "gold1.5",
    base: Annotated[
        bool, typer.Option("--base/--no-base", help="GEN: also run one no-memory trial on "
                           "each test variation (BASE).")
    ] = True,
    model: Annotated[
        str | None, typer.Option(help=MODEL_SPECS)
    ] = None,
    base_url: BaseUrlOpt = None,
    simplification: Annotated[str, typer.Option(help="ScienceWorld simplifications.")] = "easy",
    env: Annotated[str, typer.Option("--env", "--test-env",
                                     help="Environment of --tasks (see `clin run --help`).")
                   ] = "scienceworld",
    train_env: Annotated[
        str | None, typer.Option("--train-env", help="gen-task across environments: the "
                                 "--source-tasks train in this environment, and what they "
                                 "teach is inherited \"from another environment\".")
    ] = None,
    env_opt: Annotated[
        list[str] | None, typer.Option("--env-opt", help="KEY=VALUE for the environment, "
                                       "repeatable.", show_default=False)
    ] = None,
    workers: Annotated[int, typer.Option(help="Parallel episodes (one JVM + model each).")] = 1,
    executor: Annotated[
        str, typer.Option(help="local (processes on this machine) | ray (Ray actors; "
                          "pip install 'clin-agent[ray]').")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(
            "--ray-address", help="--executor ray: cluster to join, HOST:PORT (default: the "
            "one `ray start` runs on this machine, else a private local Ray; 'local': always "
            "a private one).")
    ] = None,
    episode_timeout: Annotated[
        float | None, typer.Option("--episode-timeout", help="--executor ray: seconds before a "
                                   "hung episode is cancelled and re-run (default 3600).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the latest unfinished eval (its settings "
                           "are reused); finished trials are not re-run.")
    ] = False,
    eval_id: Annotated[
        int | None, typer.Option("--eval-id", help="With --resume: which eval.")
    ] = None,
    db: DbOpt = Path("clin.db"),
) -> None:
    """Run an evaluation protocol over many episodes (ADAPT, GEN-ENV or GEN-TASK)."""
    from clin.trials.eval import Execution

    execution = Execution(workers=workers, executor=executor, ray_address=ray_address,
                          episode_timeout_s=episode_timeout)
    execution.check()  # before a JVM or a model starts
    cfg = None
    if not resume:
        cfg = _config(protocol=protocol, tasks=tasks, source_tasks=source_tasks,
                      train_variations=train_variations, test_variations=test_variations,
                      trials=trials, max_steps=max_steps, step_budget=step_budget, base=base,
                      model=model, base_url=base_url, simplification=simplification, env=env,
                      train_env=train_env, env_opt=env_opt)
    elif eval_id is not None and eval_id < 1:
        raise UserError("--eval-id must be a positive eval id")
    summary = _run_with_progress(db, cfg, resume=resume, eval_id=eval_id, execution=execution)
    out.print(f"eval {summary.eval_id} {summary.status}: {summary.trials_done}/"
              f"{summary.trials_total} trials ({summary.ran_trials} run now), "
              f"{summary.metas} meta-memories; see: clin report --run {summary.eval_id}"
              f"{_db_flag(db)}")


def _db_flag(db: Path) -> str:
    """`` --db PATH`` for a hint the user may paste, empty for the default file."""
    return "" if str(db) == "clin.db" else f" --db {db}"


def _config(*, protocol: str, tasks: str | None, source_tasks: str | None,
            train_variations: int, test_variations: int, trials: int, max_steps: int,
            step_budget: str, base: bool, model: str | None, base_url: str | None,
            simplification: str, env: str, train_env: str | None,
            env_opt: list[str] | None) -> EvalConfig:
    """A new eval's settings from the options, each refused with its own line."""
    from clin.envs.registry import canonical, parse_options
    from clin.llm.spec import default_spec, parse_spec
    from clin.trials.protocols import EvalConfig

    if protocol not in ("adapt", "gen-env", "gen-task"):
        raise UserError(f"unknown --protocol {protocol!r}: use adapt, gen-env or gen-task")
    if step_budget not in ("fixed", "gold1.5"):
        raise UserError(f"unknown --step-budget {step_budget!r}: use gold1.5 or fixed")
    for name, value in (("--trials", trials), ("--max-steps", max_steps),
                        ("--test-variations", test_variations)):
        if value < 1:
            raise UserError(f"{name} must be at least 1")
    spec = model or default_spec()
    parse_spec(spec)
    name, options = canonical(env), parse_options(env_opt or [])
    return EvalConfig(
        protocol=protocol, tasks=_tasks(tasks) or _default_tasks(name, options),
        env=name, env_options=options,
        train_env=canonical(train_env) if train_env else None,
        source_tasks=_tasks(source_tasks), train_variations=train_variations,
        test_variations=test_variations, trials=trials, max_steps=max_steps,
        step_budget=step_budget, base=base, simplification=simplification, model=spec,
        base_url=base_url,
    )


def _run_with_progress(db: Path, cfg: EvalConfig | None, *, resume: bool, eval_id: int | None,
                       execution: Execution) -> EvalSummary:
    """Run the eval under one progress bar; on Ctrl-C say how to continue, then re-raise."""
    from clin.trials.eval import run_eval

    with progress_bar("[bold]eval {task.fields[eval]} {task.fields[phase]}", "trials",
                      "{task.fields[running]}", console=out) as progress:
        bar = progress.add_task("", total=None, eval="", phase="", running="")

        def on_start(row) -> None:
            verb = "resuming" if resume else "started"
            err.print(f"{verb} eval {row.id} ({row.protocol}, model {row.config.model}, "
                      f"memory namespace {row.namespace})")
            progress.update(bar, eval=row.id)

        def on_progress(p) -> None:
            progress.update(bar, total=p.total, completed=p.done, phase=p.phase,
                            running="; ".join(p.running)[:90])

        try:
            return run_eval(db, cfg, resume=resume, eval_id=eval_id, execution=execution,
                            on_progress=on_progress, on_start=on_start)
        except KeyboardInterrupt:
            progress.stop()
            err.print("interrupted: finished trials are kept; continue with: clin eval "
                      f"--resume{_db_flag(db)}")
            raise


def report_cmd(
    run: Annotated[
        int | None, typer.Option("--run", help="Eval id (default: the latest eval).")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for report.md, report.html and PNGs.")
    ] = Path("clin-report"),
    html: Annotated[
        bool, typer.Option("--html", help="Also export the viewer's pages (`clin view`) for "
                           "the eval, or the run of --run-id, as static HTML into --out "
                           "(open index.html from disk).")
    ] = False,
    run_id: Annotated[
        int | None, typer.Option("--run-id", help="With --html: export this `clin run` "
                                 "(runs.id) instead of an eval (default: the latest run when "
                                 "the database has no eval).")
    ] = None,
    db: DbOpt = Path("clin.db"),
) -> None:
    """Paper-style tables and plots for an eval, all computed by SQL views over the database;
    with --html, also the viewer's pages as a folder that opens from disk."""
    from clin.trials.report import NEGATIVES_NOTE, build_report, write_report
    from clin.trials.schema import open_memory

    if not db.exists():
        raise UserError(f"database {db} does not exist yet: run `clin eval` first or pass --db")
    if run_id is not None and not html:
        raise UserError("--run-id needs --html (the paper-style report is per eval)")
    if html and (run_id is not None or (run is None and _latest_eval(db) is None)):
        _export_html(db, out_dir, run_id=run_id if run_id is not None else _latest_run(db))
        return
    with open_memory(db) as mem:  # applies pending migrations, so the views exist
        rep = build_report(mem, run)
    files = write_report(rep, out_dir)
    if html:
        _export_html(db, out_dir, eval_id=rep.eval_id)
    table = Table(title=rep.title)
    for col in rep.columns:
        table.add_column(col.short or col.label, justify="left" if col.key in ("task", "grp") else "right")
    for row in [*rep.rows, *rep.group_rows]:
        table.add_row(*(col.fmt(row.get(col.key)) for col in rep.columns))
    out.print(table)
    out.print(NEGATIVES_NOTE, style="dim")
    paper = Table(title="beside the CLIN paper (GPT-4, 18 tasks)")
    for name in ("setting", "ours", "ours (raw)", "paper"):
        paper.add_column(name, justify="left" if name == "setting" else "right")
    for r in rep.paper:
        paper.add_row(r.setting, r.note or _num(r.ours), "-" if r.note else _num(r.ours_raw),
                      _num(r.paper))
    if rep.paper:  # ScienceWorld evals only
        out.print(paper)
    out.print(f"wrote {', '.join(str(f) for f in files)}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _latest(db: Path, sql: str) -> int | None:
    from clin.memory import QueryError, run_readonly_query

    try:
        _, rows = run_readonly_query(db, sql)
    except QueryError:  # an older database without that table
        return None
    return rows[0][0] if rows else None


def _latest_eval(db: Path) -> int | None:
    return _latest(db, "SELECT max(id) FROM evals")


def _latest_run(db: Path) -> int:
    run_id = _latest(db, "SELECT max(id) FROM runs")
    if run_id is None:
        raise UserError(f"no run in {db} yet: run `clin run` first")
    return run_id


def _export_html(db: Path, out_dir: Path, *, run_id: int | None = None,
                 eval_id: int | None = None) -> None:
    from clin.viewer import ViewerError, export_static

    try:
        files = export_static(db, out_dir, run_id=run_id, eval_id=eval_id)
    except ViewerError as exc:
        raise UserError(str(exc)) from None
    what = f"run {run_id}" if run_id is not None else f"eval {eval_id}"
    out.print(f"wrote the viewer's pages of {what}: {len(files)} files; open "
              f"{out_dir / 'index.html'}")


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``report`` to the ``clin`` app."""
    app.command("eval")(eval_cmd)
    app.command("report")(report_cmd)
