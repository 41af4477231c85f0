"""The paper-style report of an eval: tables and plots, every number read from the SQL views
of ``trials/clin/trials/schema.py`` (``v_eval_report``, ``v_eval_report_groups``, ``v_eval_curve``,
``v_meta_memories``), so a researcher can reproduce any cell with one query."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from clin.errors import UserError
from clin.memory import Memory

from . import evaldb
from .protocols import cross_env

GROUP_ORDER = {"short": 0, "long": 1, "other": 2, "all": 3}


class Column(BaseModel):
    key: str
    label: str  # in documents
    short: str = ""  # in the terminal, where width is scarce
    digits: int = 1

    def fmt(self, value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.{self.digits}f}"
        return str(value)


_HEAD = [
    Column(key="task", label="task", short="task"), Column(key="grp", label="group", short="grp"),
    Column(key="episodes", label="episodes", short="eps"),
]
_TAIL = [
    Column(key="steps_per_trial", label="steps/trial", short="steps"),
    Column(key="steps_norm", label="steps/gold", short="st/gold", digits=2),
    Column(key="tokens_per_trial", label="tokens/trial", short="tokens", digits=0),
]
ADAPT_COLUMNS = [
    *_HEAD,
    Column(key="trial1_paper", label="BASE = trial 1", short="BASE"),
    Column(key="final_paper", label="ADAPT (final)", short="ADAPT"),
    Column(key="trial1_score", label="trial 1 (raw)", short="t1 raw"),
    Column(key="final_score", label="final (raw)", short="fin raw"),
    Column(key="best_score", label="best (raw)", short="best"),
    *_TAIL,
]
GEN_COLUMNS = [
    *_HEAD,
    Column(key="base_paper", label="BASE (no memory)", short="BASE"),
    Column(key="trial1_paper", label="GEN (zero-shot)", short="GEN"),
    Column(key="final_paper", label="GEN+ADAPT (final)", short="GEN+ADAPT"),
    Column(key="base_score", label="BASE (raw)", short="BASE raw"),
    Column(key="trial1_score", label="GEN (raw)", short="GEN raw"),
    Column(key="final_score", label="GEN+ADAPT (raw)", short="G+A raw"),
    Column(key="train_trial1_paper", label="train trial 1", short="train t1"),
    Column(key="train_final_paper", label="train final", short="train fin"),
    *_TAIL,
]

NEGATIVES_NOTE = (
    "Scores without '(raw)' are paper-style: a trial that ends below 0 (a failed task, -100) "
    "counts as 0, as the CLIN authors averaged (sum of the scores >= 0 over all trials); "
    "'(raw)' averages the simulator's scores as they are. steps/gold: steps divided by the "
    "simulator's gold path length."
)
GEN_NOTE = (
    "BASE: one trial without memory on the same test variations; GEN: the first trial on "
    "them with the meta-memory only (zero-shot); GEN+ADAPT: their last trial; train: the "
    "training episodes learning from scratch (ADAPT on other variations)."
)

# The CLIN paper's averages over its 18 tasks (GPT-4, 5 trials, `easy`; Majumder et al. 2023).
PAPER = {
    "base": 48.6, "adapt": 62.2, "gen-env zero-shot": 52.7, "gen-env gen+adapt": 69.5,
    "reflexion": 39.4,
}


PAPER_NOTE = (
    "The paper's figures: GPT-4, its 18 tasks, 5 trials, `easy` simplification, each trial "
    "capped at 1.5 x the gold path length; averages over tasks, negatives as 0. {budget}"
)
BUDGET_NOTES = {
    "gold1.5": "This eval used the same step cap (--step-budget gold1.5).",
    "fixed": "This eval gave every trial a fixed step limit (--step-budget fixed), so short "
             "tasks had more steps than in the paper.",
}


class PaperRow(BaseModel):
    """One line of the comparison with the paper: our average over all tasks beside theirs."""

    setting: str
    ours: float | None  # paper-style
    ours_raw: float | None
    paper: float | None
    note: str = ""


class Report(BaseModel):
    eval_id: int
    protocol: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]  # v_eval_report
    group_rows: list[dict[str, Any]]  # v_eval_report_groups, task = "avg <group>"
    curve: list[dict[str, Any]]  # v_eval_curve
    metas: list[dict[str, Any]]  # v_meta_memories
    meta_tokens: int
    paper: list[PaperRow] = []
    step_budget: str = "fixed"


def build_report(mem: Memory, eval_id: int | None = None) -> Report:
    """Read one eval's numbers from the views (the latest eval by default)."""
    eval_id = eval_id or evaldb.latest_eval(mem)
    if eval_id is None:
        raise UserError("no eval in this database yet: run `clin eval` first")
    try:
        ev = evaldb.get_eval(mem, eval_id)
    except LookupError:
        raise UserError(f"no eval {eval_id} in this database (see: clin memory sql "
                        "'SELECT id, protocol, status FROM evals')") from None

    def q(sql: str) -> list[dict[str, Any]]:
        return list(mem.db.query(sql, [eval_id]))

    rows = sorted(q("SELECT * FROM v_eval_report WHERE eval_id = ?"),
                  key=lambda r: (GROUP_ORDER.get(r["grp"], 9), r["task"]))
    groups = sorted(q("SELECT * FROM v_eval_report_groups WHERE eval_id = ?"),
                    key=lambda r: GROUP_ORDER.get(r["grp"], 9))
    for g in groups:
        g["task"], g["episodes"] = f"avg {g['grp']}", g.pop("tasks")
    phase_order = {"train": 0, "base": 1, "adapt": 2, "test": 2}
    curve = sorted(q("SELECT * FROM v_eval_curve WHERE eval_id = ?"),
                   key=lambda r: (phase_order.get(r["phase"], 2), r["task"] != "(all tasks)",
                                  r["task"], r["trial"]))
    metas = q("SELECT * FROM v_meta_memories WHERE eval_id = ? ORDER BY meta_id, learning_id")
    meta_tokens = mem.llm_call_tokens([r["llm_call_id"] for r in mem.db.query(
        "SELECT llm_call_id FROM meta_memories WHERE eval_id = ? AND llm_call_id IS NOT NULL "
        "UNION SELECT s.llm_call_id FROM meta_sources s JOIN meta_memories m ON m.id = "
        "s.meta_id WHERE m.eval_id = ? AND s.llm_call_id IS NOT NULL",  # GEN-TASK: per source
        [eval_id, eval_id])])
    cfg = ev.config
    budget = (f"max {cfg.max_steps} steps" if cfg.step_budget == "fixed" else
              f"steps 1.5 x gold path (at most {cfg.max_steps})")
    where = cfg.simplification if cfg.env == "scienceworld" else cfg.env
    if cross_env(cfg):
        where = f"trained in {cfg.train_env}, tested in {cfg.env}"
    title = (f"eval {eval_id}: {ev.protocol} ({ev.status}), model {cfg.model}, {cfg.trials} "
             f"trials, {budget}, {where}")
    all_row = next((g for g in groups if g["grp"] == "all"), {})
    return Report(eval_id=eval_id, protocol=ev.protocol, title=title,
                  columns=ADAPT_COLUMNS if ev.protocol == "adapt" else GEN_COLUMNS,
                  rows=rows, group_rows=groups, curve=curve, metas=metas,
                  meta_tokens=int(meta_tokens),
                  # the paper's figures are ScienceWorld's: beside another env's, they mislead
                  paper=paper_rows(ev.protocol, all_row) if cfg.env == "scienceworld"
                  and not cross_env(cfg) else [],
                  step_budget=cfg.step_budget)


def paper_rows(protocol: str, avg: dict[str, Any]) -> list[PaperRow]:
    """Our all-task averages beside the CLIN paper's (GPT-4). GEN-TASK figures are not
    quoted: the paper's GEN-TASK table is over its own task pairs."""
    def ours(key: str) -> tuple[float | None, float | None]:
        return avg.get(f"{key}_paper"), avg.get(f"{key}_score")

    if protocol == "adapt":
        rows = [("BASE (trial 1, no memory)", "trial1", PAPER["base"]),
                ("ADAPT (final trial)", "final", PAPER["adapt"])]
    else:
        gen_env = protocol == "gen-env"
        rows = [("BASE (no memory, test variations)", "base", PAPER["base"]),
                ("GEN zero-shot (trial 1)", "trial1",
                 PAPER["gen-env zero-shot"] if gen_env else None),
                ("GEN+ADAPT (final trial)", "final",
                 PAPER["gen-env gen+adapt"] if gen_env else None)]
    out = [PaperRow(setting=name, ours=ours(key)[0], ours_raw=ours(key)[1], paper=fig)
           for name, key, fig in rows]
    out.append(PaperRow(setting="Reflexion (paper's baseline)", ours=None, ours_raw=None,
                        paper=PAPER["reflexion"], note="not run here"))
    return out


# ---------------------------------------------------------------------- plots
def plot(rep: Report, metric: str, path: Path) -> Path:
    """``metric`` (score | steps) against trial number: one thin line per task, the average
    over tasks thick; GEN evals also show the training (ADAPT from scratch) average dashed."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 4.2), dpi=100)
    ax = fig.add_subplot()
    main_phase = "adapt" if rep.protocol == "adapt" else "test"
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rep.curve:
        if r[metric] is not None:
            series.setdefault((r["phase"], r["task"]), []).append((r["trial"], r[metric]))
    for (phase, task), pts in sorted(series.items()):
        xs, ys = zip(*sorted(pts))
        if task == "(all tasks)":
            if phase == main_phase:
                ax.plot(xs, ys, color="black", linewidth=2.5, marker="o", label="average",
                        zorder=3)
            elif phase == "train":
                ax.plot(xs, ys, color="gray", linewidth=2, linestyle="--",
                        label="average, training episodes")
            elif phase == "base":
                ax.scatter(xs, ys, color="red", marker="x", s=60, zorder=4,
                           label="BASE (no memory), average")
        elif phase == main_phase:
            ax.plot(xs, ys, linewidth=1, marker=".", alpha=0.8, label=task)
    ax.set_xlabel("trial")
    ax.set_ylabel({"score": "score (-100..100)", "score_paper": "score (negatives as 0)"}
                  .get(metric, metric))
    name = "score" if metric.startswith("score") else metric
    ax.set_title(f"eval {rep.eval_id} ({rep.protocol}): {name} vs trial")
    # matplotlib's AutoLocator, whole trials only
    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))
    if series:
        ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


# ---------------------------------------------------------------------- documents
def markdown_table(rep: Report) -> str:
    cols = rep.columns
    lines = ["| " + " | ".join(c.label for c in cols) + " |",
             "|" + "|".join("---" if c.key in ("task", "grp") else "---:" for c in cols) + "|"]
    for row in [*rep.rows, *rep.group_rows]:
        lines.append("| " + " | ".join(c.fmt(row.get(c.key)) for c in cols) + " |")
    return "\n".join(lines)


def paper_table(rep: Report) -> str:
    """Our averages over all tasks beside the CLIN paper's figures (GPT-4, 18 tasks)."""
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = ["| setting | ours | ours (raw) | CLIN paper (GPT-4) |", "|---|---:|---:|---:|"]
    for r in rep.paper:
        paper = f(r.paper) if r.paper is not None else "-"
        lines.append(f"| {r.setting} | {f(r.ours) if r.note == '' else r.note} | "
                     f"{f(r.ours_raw) if r.note == '' else '-'} | {paper} |")
    return "\n".join(lines)


def per_trial_table(rep: Report) -> str:
    head = "| phase | task | trial | episodes | score | score (raw) | steps | steps/gold | tokens |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def f(v: float | None, d: int = 1) -> str:
        return "-" if v is None else f"{v:.{d}f}"

    for r in rep.curve:
        lines.append(f"| {r['phase']} | {r['task']} | {r['trial']} | {r['episodes']} | "
                     f"{f(r.get('score_paper'))} | {f(r['score'])} | {f(r['steps'])} | "
                     f"{f(r.get('steps_norm'), 2)} | {r['tokens']:.0f} |")
    return "\n".join(lines)


def meta_section(rep: Report) -> str:
    if not rep.metas:
        return ""
    lines = [f"## Meta-memories ({rep.meta_tokens} tokens to build)", ""]
    for r in rep.metas:
        lines.append(f"- `{r['key']}` [{r['confidence']}] {r['text']} "
                     f"(from trials {r['source_trial_ids']})")
    return "\n".join(lines) + "\n"


def to_markdown(rep: Report, images: dict[str, str]) -> str:
    parts = [f"# {rep.title}", "", markdown_table(rep), "", NEGATIVES_NOTE, ""]
    if rep.protocol != "adapt":
        parts += [GEN_NOTE, ""]
    if rep.paper:
        parts += ["## Beside the CLIN paper", "", paper_table(rep), "",
                  PAPER_NOTE.format(budget=BUDGET_NOTES[rep.step_budget]), ""]
    for name, src in images.items():
        parts += [f"![{name}]({src})", ""]
    parts += ["## Per trial", "", per_trial_table(rep), "", meta_section(rep)]
    return "\n".join(parts).rstrip() + "\n"


def to_html(markdown_text: str, rep: Report, pngs: dict[str, Path]) -> str:
    """A self-contained page: tables as HTML, plots embedded as data URIs."""

    def table(md: str) -> str:
        rows = [r.strip().strip("|").split("|") for r in md.splitlines()]
        head, body = rows[0], rows[2:]
        th = "".join(f"<th>{html.escape(c.strip())}</th>" for c in head)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r)
                      + "</tr>" for r in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    imgs = "".join(
        f'<p><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"></p>' for name, p in pngs.items())
    metas = "".join(f"<li><code>{html.escape(r['key'])}</code> {html.escape(r['text'])} "
                    f"(from trials {r['source_trial_ids']})</li>" for r in rep.metas)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
             "td{text-align:right}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(rep.title)}"
            f"</title><style>{style}</style></head><body><h1>{html.escape(rep.title)}</h1>"
            f"{table(markdown_table(rep))}<p>{html.escape(NEGATIVES_NOTE)}</p>"
            + (f"<h2>Beside the CLIN paper</h2>{table(paper_table(rep))}"
               f"<p>{html.escape(PAPER_NOTE.format(budget=BUDGET_NOTES[rep.step_budget]))}</p>"
               if rep.paper else "")
            + f"{imgs}<h2>Per trial</h2>{table(per_trial_table(rep))}"
            + (f"<h2>Meta-memories</h2><ul>{metas}</ul>" if metas else "")
            + "</body></html>")


def write_report(rep: Report, out_dir: Path) -> list[Path]:
    """Write ``scores.png``, ``steps.png``, ``report.md`` (links the PNGs) and ``report.html``
    (self-contained) into ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create report directory {out_dir}: {exc.strerror}") from None
    pngs = {
        "score vs trial": plot(rep, "score_paper", out_dir / f"eval{rep.eval_id}-scores.png"),
        "steps vs trial": plot(rep, "steps", out_dir / f"eval{rep.eval_id}-steps.png"),
    }
    md = to_markdown(rep, {k: p.name for k, p in pngs.items()})
    md_path = out_dir / f"eval{rep.eval_id}-report.md"
    html_path = out_dir / f"eval{rep.eval_id}-report.html"
    md_path.write_text(md)
    html_path.write_text(to_html(md, rep, pngs))
    return [md_path, html_path, *pngs.values()]
