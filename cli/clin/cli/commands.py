"""The ``clin`` command: a thin layer that parses options, calls library functions, and
renders with rich. User errors print one line to stderr and exit with code 2; so do usage
errors (unknown option or command, bad value), with typer's usage line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from clin.envs.base import EnvError
from clin.errors import LLMError, UserError
from clin.memory import (
    Memory,
    MemoryStoreError,
    Scope,
    export_jsonl,
    import_jsonl,
    run_readonly_query,
)
from clin.memory.sql import QUERY_TIMEOUT_S, display_text

from .options import MODEL_SPECS, BaseUrlOpt, DbOpt
from .output import progress_bar, write_rows

HELP = """CLIN: a language agent that learns causal abstractions ("opening the door SHOULD BE
NECESSARY to go outside") across trials of a task, with a frozen LLM, and keeps them in a
SQLite memory you can query.

Start with `clin run --task grow-plant --trials 3 --max-steps 10` (an offline model, no API
key), then `clin memory list` and `clin view`."""

app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP,
                  rich_markup_mode="markdown")
memory_app = typer.Typer(no_args_is_help=True, help="Inspect the memory database.")
app.add_typer(memory_app, name="memory")

out = Console()
err = Console(stderr=True, highlight=False, soft_wrap=True)

EnvOpt = Annotated[
    str,
    typer.Option("--env", help="Environment: scienceworld, textworld-express (twx), tiny, or "
                 "one a plugin registers (clin.envs entry points)."),
]
EnvOptions = Annotated[
    list[str] | None,
    typer.Option("--env-opt", help="KEY=VALUE passed to the environment, repeatable; "
                 "twx game parameters, e.g. numLocations=5 (see README).", show_default=False),
]
LIST_CLIP = 200  # characters of a learning's text `memory list` shows without --full


class CliError(Exception):
    """Raised inside commands for user errors; printed as one line, exit code 2."""


def env_name(name: str) -> str:
    """The registered name for ``--env`` (an alias resolved); unknown: one line, exit 2."""
    from clin.envs.registry import canonical

    return canonical(name)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"clin {version('clin-agent')}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _top(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    pass


@app.command()
def run(
    task: Annotated[str, typer.Option(help="Task, e.g. grow-plant (`clin tasks --env ...`).")],
    trials: Annotated[int, typer.Option(help="Number of trials (memory carries over).")] = 5,
    variation: Annotated[int, typer.Option(help="Task variation index.")] = 0,
    model: Annotated[
        str | None, typer.Option(help=f"{MODEL_SPECS} (default: local without OPENAI_API_KEY).")
    ] = None,
    base_url: BaseUrlOpt = None,
    max_steps: Annotated[int, typer.Option(help="Step limit per trial.")] = 100,
    simplification: Annotated[
        str | None, typer.Option(help="ScienceWorld simplifications (default easy).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the last unfinished run of this task/variation.")
    ] = False,
    env: EnvOpt = "scienceworld",
    env_opt: EnvOptions = None,
    db: DbOpt = Path("clin.db"),
) -> None:
    """Run TRIALS trials of a task; reflection after each trial writes memory for the next."""
    from clin.envs.registry import parse_options
    from clin.trials.session import RunRequest, run_session

    if trials < 1:
        raise CliError("--trials must be at least 1")
    if max_steps < 1:
        raise CliError("--max-steps must be at least 1")
    request = RunRequest(
        task=task, trials=trials, variation=variation, model=model, base_url=base_url,
        max_steps=max_steps, simplification=simplification, db=db, resume=resume,
        env=env_name(env), env_options=parse_options(env_opt or []),
    )
    with progress_bar("[bold]trial {task.fields[trial]}", "score {task.fields[score]:>5}",
                      "{task.fields[action]}", console=out) as progress:
        bars: dict[int, TaskID] = {}

        def on_step(ev) -> None:
            if ev.trial not in bars:
                bars[ev.trial] = progress.add_task(
                    "", total=ev.max_steps, trial=ev.trial, score=0, action=""
                )
            progress.update(bars[ev.trial], completed=ev.step, score=f"{ev.score:g}",
                            action=ev.action[:50])

        def on_trial(res) -> None:
            if res.idx in bars:
                progress.update(bars[res.idx], total=res.steps, completed=res.steps)

        try:
            summary = run_session(request, on_step=on_step, on_trial=on_trial,
                                  notice=err.print)
        except KeyboardInterrupt:
            progress.stop()
            err.print("interrupted: finished trials are kept in the database; continue with "
                      "the same command and --resume", markup=False)
            raise
    table = Table(title=f"run {summary.run_id}: {task} v{variation} ({summary.model})")
    # Short headers: the table must fit 80 columns (rich's width when piped to a file).
    for col in ("trial", "score", "steps", "done", "stop", "learned", "tok in", "tok out"):
        table.add_column(col, justify="left" if col == "stop" else "right", no_wrap=True)
    for r in summary.trials:
        table.add_row(
            str(r.idx), f"{r.score:g}", str(r.steps), "yes" if r.completed else "no",
            r.stop_reason, str(r.outcome.written), str(r.prompt_tokens),
            str(r.completion_tokens),
        )
    out.print(table)
    if len(summary.trials) > 1:
        out.print("score by trial: " + " -> ".join(f"{r.score:g}" for r in summary.trials))
    out.print(f"stored in {db} (run {summary.run_id}); try: clin memory list --task {task}")


@app.command()
def tasks(env: EnvOpt = "scienceworld", env_opt: EnvOptions = None) -> None:
    """List an environment's tasks with their variation counts."""
    from clin.envs.registry import make, parse_options

    world = make(env_name(env), **parse_options(env_opt or []))
    try:
        infos = world.tasks()
    finally:
        world.close()
    table = Table("task", "variations", *(["about"] if any(t.description for t in infos)
                                           else []), title=world.name)
    for t in infos:
        table.add_row(t.name, str(t.variations), *([t.description] if t.description else []))
    out.print(table)


@memory_app.command("list")
def memory_list(
    task: Annotated[str | None, typer.Option(help="Only learnings for this task.")] = None,
    variation: Annotated[int | None, typer.Option(help="Only this variation.")] = None,
    full: Annotated[
        bool, typer.Option("--full", help=f"Whole texts (default: the first {LIST_CLIP} "
                           "characters of each).")
    ] = False,
    db: DbOpt = Path("clin.db"),
) -> None:
    """Show current learnings (with support and confidence)."""
    sql = "SELECT id, task, variation, confidence, support, mean_score, text FROM v_learnings"
    where, params = [], []
    if task is not None:
        where.append("task = ?")
        params.append(task)
    if variation is not None:
        where.append("variation = ?")
        params.append(str(variation))
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY task, variation, confidence = 'should' DESC, support DESC, id"
    _, rows = _query(db, sql, params)
    if not rows:
        out.print("no learnings stored yet for that selection")
        return
    # The text gets every column the others leave, and wraps; the rest never wrap.
    table = Table("id", "task", "var.", "conf.", "supp.", "score", "text", expand=True)
    for c in table.columns[:-1]:
        c.no_wrap = True
    table.columns[-1].ratio = 1
    table.columns[-1].min_width = 30
    for lid, t, v, conf, supp, score, text in rows:
        text = display_text(text or "")
        if not full and len(text) > LIST_CLIP:
            text = text[:LIST_CLIP - 1].rstrip() + "…"
        table.add_row(str(lid), _cell(t), _cell(v), conf, str(supp), _cell(score), text)
    out.print(table)
    if not full and any(len(r[6] or "") > LIST_CLIP for r in rows):
        out.print(f"(texts clipped at {LIST_CLIP} characters: --full shows them whole)",
                  style="dim")


@memory_app.command("sql")
def memory_sql(
    query: Annotated[str, typer.Argument(help="One read-only SELECT statement.")],
    timeout: Annotated[
        float, typer.Option("--timeout", help="Stop the query after this many seconds.")
    ] = QUERY_TIMEOUT_S,
    as_json: Annotated[
        bool, typer.Option("--json", help="Rows as one JSON array of objects.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Rows as CSV with a header.")] = False,
    as_nl: Annotated[
        bool, typer.Option("--nl", help="Rows as newline-delimited JSON objects.")
    ] = False,
    db: DbOpt = Path("clin.db"),
) -> None:
    """Run a read-only SQL query against the database (writes are refused); a table, or
    machine-readable rows on standard output with --json, --csv or --nl."""
    if not timeout > 0:
        raise CliError("--timeout must be a positive number of seconds")
    if as_json + as_csv + as_nl > 1:
        raise CliError("give at most one of --json, --csv and --nl")
    cols, rows = _query(db, query, [], timeout_s=timeout)
    if as_json or as_nl or as_csv:
        write_rows(sys.stdout, cols, rows, "json" if as_json else "nl" if as_nl else "csv")
        return
    if not rows:
        out.print("(no rows)")
        return
    table = Table(*cols)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    out.print(table)


@memory_app.command("export")
def memory_export(
    out_file: Annotated[
        Path, typer.Argument(help="JSONL file to write ('-' for standard output).")
    ] = Path("-"),
    task: Annotated[str | None, typer.Option(help="Only learnings of this task.")] = None,
    retired: Annotated[bool, typer.Option(help="Include retired learnings.")] = False,
    env: Annotated[
        str | None, typer.Option("--env", help="Only learnings of this environment.")
    ] = None,
    db: DbOpt = Path("clin.db"),
) -> None:
    """Export learnings (with scope and support) as JSON lines; the database is opened
    read-only."""
    where = env_name(env) if env else None
    scope = Scope(env=where, task=task) if task or where else None
    if str(out_file) == "-":
        n = export_jsonl(db, sys.stdout, scope, include_retired=retired)
    else:
        with open(out_file, "w", encoding="utf-8") as fh:
            n = export_jsonl(db, fh, scope, include_retired=retired)
    err.print(f"exported {n} learnings", markup=False)


@memory_app.command("import")
def memory_import(
    in_file: Annotated[Path, typer.Argument(help="JSONL file written by `clin memory export`.")],
    db: DbOpt = Path("clin.db"),
) -> None:
    """Import learnings from JSON lines; learnings already present are left as they are."""
    if not in_file.exists():
        raise CliError(f"{in_file} does not exist")
    with Memory(db) as mem, open(in_file, encoding="utf-8") as fh:
        n = import_jsonl(mem, fh)
    out.print(f"imported {n} new learnings into {db}")


@app.command()
def view(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 0,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the viewer in a web browser.")
    ] = False,
    db: DbOpt = Path("clin.db"),
) -> None:
    """Serve a read-only web viewer of the database on 127.0.0.1 (runs, trials step by step,
    trial vs trial, learnings and where they came from); Ctrl-C stops it."""
    from clin.viewer import ViewerError
    from clin.viewer.app import serve

    if not 0 <= port <= 65535:
        raise CliError("--port must be between 0 and 65535")
    try:
        serve(db, port=port, open_browser=open_browser,
              announce=lambda url: print(f"CLIN viewer of {db} at {url} (Ctrl-C stops it)",
                                         flush=True))
    except ViewerError as exc:
        raise CliError(str(exc)) from None


def _query(db: Path, sql: str, params: list,
           timeout_s: float = QUERY_TIMEOUT_S) -> tuple[list[str], list[tuple]]:
    if not db.exists():
        raise CliError(f"database {db} does not exist yet: run `clin run` first or pass --db")
    return run_readonly_query(db, sql, params, timeout_s=timeout_s)


def _cell(v: object) -> str:
    """A value as a table shows it: "—" for NULL, bidi controls neutralised."""
    return "—" if v is None else display_text(str(v))


from .eval import register as _register_eval
from .mcp import register as _register_mcp

_register_eval(app)
_register_mcp(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (tests call it in-process)."""
    from .shutdown import bounded_exit

    with bounded_exit() as stop:
        try:
            rc = _invoke(argv)
        except Exception as exc:
            if stop.signum is None:
                raise  # a bug: its traceback is wanted
            # a library turned the signal's KeyboardInterrupt into an error of its own; the
            # simulators' py4j does so, and clin.envs.jvm gives it back to every caller (a
            # run is then 'interrupted'): this is the last net, for any other library
            err.print(f"interrupted ({type(exc).__name__} while stopping: {exc})",
                      markup=False)
            rc = 130
    if stop.signum is not None:
        stop.exit_now()
    return rc


def _invoke(argv: list[str] | None) -> int:
    """Run the command; user errors become one line on stderr and exit code 2.

    typer runs in standalone mode, so it prints usage errors itself (usage line, the error,
    exit code 2) whichever click it bundles (typer 0.29 vendors its own, whose exceptions are
    not ``click``'s); its exits arrive here as ``SystemExit``. Our own errors pass through."""
    try:
        app(args=argv, prog_name="clin", standalone_mode=True)
        rc = 0
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (CliError, UserError, EnvError, MemoryStoreError) as exc:
        err.print(f"error: {exc}", markup=False)
        return 2
    except LLMError as exc:  # transient errors that outlasted the retries
        err.print(f"error: the LLM kept failing: {exc}; finished trials are kept, "
                  "continue with --resume", markup=False)
        return 2
    except KeyboardInterrupt:  # typer turns Ctrl-C into exit code 130; each command says
        rc = 130               # what it kept
    return rc
