"""Machine-readable query output for ``clin memory sql --json | --nl | --csv``, written the
way sqlite-utils writes it: ``--json`` one array of objects, ``--nl`` one object a line,
``--csv`` a header row then the rows. Bytes become base64 strings in JSON."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Sequence
from typing import Any, Literal, TextIO

Format = Literal["json", "nl", "csv"]


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
