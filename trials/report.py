"""The paper-style report of an eval: tables and plots, every number read from the SQL views
of ``trials/schema.py`` (``v_eval_report``, ``v_eval_report_groups``, ``v_eval_curve``,
``v_meta_memories``), so a researcher can reproduce any cell with one query."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from clin.memory import Memory
from pydantic import BaseModel

from clin.errors import UserError

from . import evaldb

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


_COMMON_TAIL = [
    Column(key="best_score", label="best", short="best"),
    Column(key="steps_per_trial", label="steps/trial", short="steps"),
    Column(key="tokens_per_trial", label="tokens/trial", short="tokens", digits=0),
]
ADAPT_COLUMNS = [
    Column(key="task", label="task", short="task"), Column(key="grp", label="group", short="grp"),
    Column(key="episodes", label="episodes", short="eps"),
    Column(key="trial1_score", label="trial 1", short="trial 1"), Column(key="final_score", label="final", short="final"),
    *_COMMON_TAIL,
]
GEN_COLUMNS = [
    Column(key="task", label="task", short="task"), Column(key="grp", label="group", short="grp"),
    Column(key="episodes", label="episodes", short="eps"),
    Column(key="train_trial1_score", label="ADAPT trial 1 (train)", short="train t1"),
    Column(key="train_final_score", label="ADAPT final (train)", short="train fin"),
    Column(key="trial1_score", label="zero-shot (GEN trial 1)", short="zero-shot"),
    Column(key="final_score", label="GEN+ADAPT (final)", short="GEN+ADAPT"),
    *_COMMON_TAIL,
]


GEN_NOTE = (
    "ADAPT columns: training episodes learning from scratch; zero-shot: the first trial on "
    "unseen test episodes with the meta-memory only; GEN+ADAPT: their last trial."
)


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
    phase_order = {"train": 0, "adapt": 1, "test": 1}
    curve = sorted(q("SELECT * FROM v_eval_curve WHERE eval_id = ?"),
                   key=lambda r: (phase_order.get(r["phase"], 2), r["task"] != "(all tasks)",
                                  r["task"], r["trial"]))
    metas = q("SELECT * FROM v_meta_memories WHERE eval_id = ? ORDER BY meta_id, learning_id")
    meta_tokens = mem.llm_call_tokens([r["llm_call_id"] for r in q(
        "SELECT llm_call_id FROM meta_memories WHERE eval_id = ? AND llm_call_id IS NOT NULL")])
    cfg = ev.config
    title = (f"eval {eval_id}: {ev.protocol} ({ev.status}), model {cfg.model}, {cfg.trials} "
             f"trials, max {cfg.max_steps} steps, {cfg.simplification}")
    return Report(eval_id=eval_id, protocol=ev.protocol, title=title,
                  columns=ADAPT_COLUMNS if ev.protocol == "adapt" else GEN_COLUMNS,
                  rows=rows, group_rows=groups, curve=curve, metas=metas,
                  meta_tokens=int(meta_tokens))


# ---------------------------------------------------------------------- plots
def plot(rep: Report, metric: str, path: Path) -> Path:
    """``metric`` (score | steps) against trial number: one thin line per task, the average
    over tasks thick; GEN evals also show the training (ADAPT from scratch) average dashed."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

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
        elif phase == main_phase:
            ax.plot(xs, ys, linewidth=1, marker=".", alpha=0.8, label=task)
    ax.set_xlabel("trial")
    ax.set_ylabel("score (0-100)" if metric == "score" else "steps")
    ax.set_title(f"eval {rep.eval_id} ({rep.protocol}): {metric} vs trial")
    ax.xaxis.get_major_locator().set_params(integer=True)
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


def per_trial_table(rep: Report) -> str:
    lines = ["| phase | task | trial | episodes | score | steps | tokens |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rep.curve:
        lines.append(f"| {r['phase']} | {r['task']} | {r['trial']} | {r['episodes']} | "
                     f"{r['score']:.1f} | {r['steps']:.1f} | {r['tokens']:.0f} |")
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
    parts = [f"# {rep.title}", "", markdown_table(rep), ""]
    if rep.protocol != "adapt":
        parts += [GEN_NOTE, ""]
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
            f"{table(markdown_table(rep))}{imgs}<h2>Per trial</h2>{table(per_trial_table(rep))}"
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
        "score vs trial": plot(rep, "score", out_dir / f"eval{rep.eval_id}-scores.png"),
        "steps vs trial": plot(rep, "steps", out_dir / f"eval{rep.eval_id}-steps.png"),
    }
    md = to_markdown(rep, {k: p.name for k, p in pngs.items()})
    md_path = out_dir / f"eval{rep.eval_id}-report.md"
    html_path = out_dir / f"eval{rep.eval_id}-report.html"
    md_path.write_text(md)
    html_path.write_text(to_html(md, rep, pngs))
    return [md_path, html_path, *pngs.values()]
