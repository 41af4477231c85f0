"""What the commands print besides tables: the progress bar of ``clin run`` and ``clin eval``,
and machine-readable query output for ``clin memory sql --json | --nl | --csv``, written the
way sqlite-utils writes it: ``--json`` one array of objects, ``--nl`` one object a line,
``--csv`` a header row then the rows. Bytes become base64 strings in JSON."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Sequence
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Format = Literal["json", "nl", "csv"]


def progress_bar(label: str, after_count: str, detail: str, *, console: Console) -> Progress:
    """A bar per job: ``label``, the bar, done/total, ``after_count``, the time elapsed and a
    dim ``detail`` (each a rich format over the job's fields)."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(after_count),
                    TimeElapsedColumn(), TextColumn(detail, style="dim"), console=console)


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return {"$base64": True, "encoded": base64.b64encode(v).decode()}
    return v


def write_rows(fh: TextIO, cols: Sequence[str], rows: Sequence[Sequence[Any]],
               fmt: Format) -> None:
    if fmt == "csv":
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rows)
        return
    objs = ({c: _jsonable(v) for c, v in zip(cols, row)} for row in rows)
    if fmt == "nl":
        fh.writelines(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)
        return
    fh.write(json.dumps(list(objs), ensure_ascii=False, indent=2) + "\n")
