"""``python -m bench [perf|prompts|local|probe|sim|view|ceiling|scale|backends|threads|mcp|all]``: run
benchmarks, print rich tables, and record the figures in bench/RESULTS.md. A thin CLI over the
benchmark modules. ``all`` runs every benchmark but ``ceiling`` (a sweep of gold paths: minutes
to an hour), ``scale`` (needs the ray extra and a few minutes), ``backends`` (installs
packages into throwaway venvs), ``threads`` (keeps every core busy for minutes) and ``mcp``
(needs the mcp extra)."""

from __future__ import annotations

import argparse
import shlex
import sys
from contextlib import closing

from rich.console import Console
from rich.table import Table

from clin.envs.base import EnvError

from .stats import BenchTable, machine

WHICH = ("perf", "prompts", "local", "probe", "sim", "view", "ceiling", "scale", "backends", "threads",
         "mcp", "all")
IN_ALL = ("perf", "prompts", "local", "probe", "sim", "view")


def parse(argv: list[str] | None) -> argparse.Namespace:
    from .local import DEFAULT_STEPS, DEFAULT_TRIALS
    from .sim import DEFAULT_STEPS as SIM_STEPS

    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("which", nargs="*", default=["all"], choices=WHICH,
                   help="benchmarks to run (default: all)")
    p.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                   help="local: trials per prefix-cache setting (issue: 5)")
    p.add_argument("--max-steps", type=int, default=DEFAULT_STEPS,
                   help="local: steps per trial (issue: 100)")
    p.add_argument("--sim-steps", type=int, default=SIM_STEPS, help="sim: steps per episode")
    p.add_argument("--env", default="scienceworld",
                   help="perf, ceiling: the environment (scienceworld, twx, ...); the other "
                   "benchmarks play ScienceWorld")
    p.add_argument("--tasks", default="",
                   help="ceiling: comma-separated task names (default: all of the env's)")
    p.add_argument("--split", default="train", choices=("train", "dev", "test"),
                   help="ceiling: which variations (the env's split)")
    p.add_argument("--variations", type=int, default=1,
                   help="ceiling: the first K variations of the split per task")
    p.add_argument("--simplification", default="easy",
                   help="ceiling: ScienceWorld simplification preset or list ('none' for none)")
    p.add_argument("--phrasing", default="verbatim", choices=("verbatim", "natural"),
                   help="ceiling: gold actions as given, or as a model writes them")
    p.add_argument("--jobs", type=int, default=1,
                   help="ceiling: tasks run in this many processes (one JVM each)")
    p.add_argument("--backend-steps", type=int, default=6,
                   help="backends: recorded controller calls per backend")
    p.add_argument("--threads", type=int, default=1,
                   help="backends: n_threads and n_threads_batch")
    p.add_argument("--thread-calls", type=int, default=6,
                   help="threads: recorded controller calls per configuration")
    p.add_argument("--lcp-python", help="backends: python of a venv with llama-cpp-python")
    p.add_argument("--lcp-install", action="store_true",
                   help="backends: time pip-installing llama-cpp-python (compiles: minutes)")
    p.add_argument("--lcp-install-s", type=float,
                   help="backends: llama-cpp-python install seconds measured separately")
    p.add_argument("--mcp-calls", type=int, default=100,
                   help="mcp: timed calls per tool (after 3 warm-up calls)")
    p.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = p.parse_args(argv)
    if args.variations < 1:
        p.error("--variations must be at least 1")
    return args


def show(console: Console, t: BenchTable) -> None:
    table = Table(title=t.title, title_justify="left")
    for c in t.columns:
        table.add_column(c, justify="right" if c != t.columns[0] else "left")
    for r in t.rows:
        table.add_row(*r)
    console.print(table)
    for n in t.notes:
        console.print(f"  - {n}", highlight=False)
    console.print()


def run(which: set[str], args: argparse.Namespace, console: Console) -> list[BenchTable]:
    from clin.envs.registry import canonical, make

    tables: list[BenchTable] = []
    env_name = canonical(args.env)
    if env_name != "scienceworld":
        if which - {"perf", "ceiling"}:
            raise EnvError("--env is for perf and ceiling; the other benchmarks play "
                           "ScienceWorld")
        if "perf" in which:
            from .overhead import overhead_table
            from .replay import run_replay

            with closing(make(env_name)) as env, console.status(f"replaying {env_name}..."):
                tables.append(overhead_table(run_replay(env)))
            show(console, tables[-1])
    elif which & {"perf", "prompts", "local", "probe", "backends", "threads"}:
        from clin.envs.scienceworld import ScienceWorld

        with ScienceWorld() as env:
            if which & {"perf", "prompts"}:
                from .overhead import overhead_table
                from .replay import run_replay
                from .tokens import default_counter, prompts_table

                with console.status("replaying the gold path of grow-plant 0..."):
                    replay = run_replay(env)
                if "perf" in which:
                    tables.append(overhead_table(replay))
                    show(console, tables[-1])
                if "prompts" in which:
                    from .reflection import reflection_table

                    counter = default_counter()
                    tables.append(prompts_table(replay, counter))
                    show(console, tables[-1])
                    with console.status("three 100-step trials for the reflection prompt..."):
                        tables.append(reflection_table(env, counter))
                    show(console, tables[-1])
            if "local" in which:
                from .local import local_table, run_local

                runs = []
                for cache in (True, False):
                    with console.status(f"local model, prefix cache {cache}..."):
                        runs.append(run_local(env, prefix_cache=cache, trials=args.trials,
                                              max_steps=args.max_steps))
                tables.append(local_table(runs, args.trials, args.max_steps))
                show(console, tables[-1])
            if "backends" in which:
                from .backends import Options, backends_table, run_backends

                opts = Options(steps=args.backend_steps, threads=args.threads,
                               lcp_python=args.lcp_python, lcp_install=args.lcp_install,
                               lcp_install_s=args.lcp_install_s)
                with console.status("offline backends side by side..."):
                    tables.append(backends_table(run_backends(env, opts), opts))
                show(console, tables[-1])
            if "threads" in which:
                from .threads import run_threads, threads_table

                with console.status("local model threads, idle and busy cores..."):
                    tables.append(threads_table(run_threads(env, args.thread_calls),
                                                args.thread_calls))
                show(console, tables[-1])
            if "probe" in which:
                from .local import probe_table

                with console.status("one controller call, cache x grammar..."):
                    tables.append(probe_table(env))
                show(console, tables[-1])
    if "ceiling" in which:
        from .ceiling import COLUMNS, ceiling_table, row, run_ceiling, summary

        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] or None
        console.print("  ".join(COLUMNS), style="bold", highlight=False)
        episodes = run_ceiling(
            tasks=tasks, split=args.split, variations=args.variations,
            simplification=args.simplification, jobs=args.jobs, env=env_name,
            phrasing=args.phrasing,
            on_episode=lambda ep: console.print("  ".join(row(ep)), highlight=False),
        )
        tables.append(ceiling_table(episodes, args.split, args.variations, args.simplification,
                                    env_name, args.phrasing))
        show(console, tables[-1])
        console.print(summary(episodes), highlight=False)
    if "sim" in which:
        from .sim import sim_table

        with console.status("ScienceWorld in 1, 2, 4 processes..."):
            tables.append(sim_table(args.sim_steps))
        show(console, tables[-1])
    if "view" in which:
        from .view import view_table

        with console.status("clin view on 1,000 trials x 100 steps..."):
            tables.append(view_table())
        show(console, tables[-1])
    if "scale" in which:
        from .scale import run_all, scale_table

        with console.status("eval episodes/min, 1/2/4 workers, local vs ray..."):
            tables.append(scale_table(run_all()))
        show(console, tables[-1])
    if "mcp" in which:
        from .mcp import mcp_table, run_mcp

        with console.status("clin mcp over stdio: start-up, calls, memory..."):
            tables.append(mcp_table(run_mcp(calls=args.mcp_calls)))
        show(console, tables[-1])
    return tables


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    which = set(IN_ALL) if "all" in args.which else set(args.which)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    try:
        tables = run(which, args, console)
    except EnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.no_write:
        from . import results

        command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
        path = results.write(tables, command.strip(), machine())
        console.print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
