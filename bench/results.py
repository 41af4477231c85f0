"""Keep the last figures in ``bench/RESULTS.md``: only the "## Performance (issue 6)"
section is ours; other sections of the file (e.g. memory scale, issue 4) are left alone, and
within ours a table's subsection is replaced only when that table was run again."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from .stats import BenchTable

SECTION = "## Performance (issue 6)"
PATH = Path(__file__).with_name("RESULTS.md")
_ORDER = ("perf", "perf_textworld-express", "prompts", "reflection", "local", "probe", "sim",
          "view", "backends", "threads", "scale", "mcp", "ceiling_train_easy",
          "ceiling_test_easy", "ceiling_train_none", "ceiling_test_none",
          "ceiling_scienceworld_test_natural", "ceiling_textworld-express_test",
          "ceiling_textworld-express_test_natural")
_INTRO = (
    "Printed by `python -m bench`; numbers from one run on a noisy machine, so compare "
    "ratios within a run. Each table says which command produced it."
)


def _split_subsections(body: str) -> dict[str, str]:
    """Our section's subsections by key (the marker comment) plus free text under 'notes'."""
    parts: dict[str, str] = {}
    for chunk in re.split(r"(?m)^(?=### )", body):
        m = re.search(r"<!-- bench:([\w-]+) -->", chunk)
        if m:
            parts[m.group(1)] = chunk.strip()
        elif chunk.startswith("### "):
            parts.setdefault("notes", "")
            parts["notes"] = (parts["notes"] + "\n\n" + chunk.strip()).strip()
    return parts


def render_table(table: BenchTable, command: str, machine: str) -> str:
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"### {table.title}\n<!-- bench:{table.key} -->\n\n"
        f"Command: `{command}` — {day} — {machine}\n\n{table.markdown()}"
    )


def write(tables: list[BenchTable], command: str, machine: str, path: Path = PATH) -> Path:
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(SECTION)
    if start == -1:
        before, after, body = text.rstrip() + "\n\n", "", ""
    else:
        rest = text[start + len(SECTION):]
        m = re.search(r"(?m)^## ", rest)
        end = start + len(SECTION) + (m.start() if m else len(rest))
        before, body, after = text[:start], text[start + len(SECTION):end], text[end:]
    parts = _split_subsections(body)
    for t in tables:
        parts[t.key] = render_table(t, command, machine)
    blocks = [parts[k] for k in _ORDER if k in parts]
    blocks += [parts[k] for k in sorted(parts) if k not in _ORDER and k != "notes"]
    if parts.get("notes"):
        blocks.append(parts["notes"])
    section = f"{SECTION}\n\n{_INTRO}\n\n" + "\n\n".join(blocks) + "\n"
    path.write_text(before + section + ("\n" + after.lstrip("\n") if after else ""))
    return path
