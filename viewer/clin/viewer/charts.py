"""Line charts as inline SVG: no JavaScript and no files, so a page shows its chart served or
opened from disk alike."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else f"{v:.3g}"


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    width: int = 560,
    height: int = 200,
    y_max: float | None = None,
    x_label: str = "trial",
    spark: bool = False,
) -> Markup:
    """One polyline per ``(name, [(x, y), ...])`` series, with axes and a legend unless
    ``spark`` (a bare sparkline for tables). An empty chart says so instead of drawing."""
    pts_all = [p for _, pts in series for p in pts]
    if not pts_all:
        return Markup('<span class="muted">no data</span>')
    pad_l, pad_r, pad_t, pad_b = (2, 2, 2, 2) if spark else (40, 10, 10, 34)
    xs = [p[0] for p in pts_all]
    ys = [p[1] for p in pts_all]
    x0, x1 = min(xs), max(xs)
    y0 = min(0.0, min(ys))
    y1 = max(max(ys), y_max or 0.0, y0 + 1)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * w

    def sy(y: float) -> float:
        return pad_t + h - (y - y0) / (y1 - y0) * h

    out = [(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img">')]
    if not spark:
        for frac in (0, 0.5, 1):
            yv = y0 + frac * (y1 - y0)
            out.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{sy(yv):.1f}" '
                       f'y2="{sy(yv):.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{pad_l - 4}" y="{sy(yv) + 4:.1f}" font-size="10" '
                       f'text-anchor="end">{_fmt(yv)}</text>')
        ticks = sorted(set(xs)) if len(set(xs)) <= 12 else [x0, (x0 + x1) / 2, x1]
        for xv in ticks:
            out.append(f'<text x="{sx(xv):.1f}" y="{pad_t + h + 14}" font-size="10" '
                       f'text-anchor="middle">{_fmt(round(xv, 1))}</text>')
        out.append(f'<text x="{pad_l + w / 2}" y="{height - 4}" font-size="11" '
                   f'text-anchor="middle">{escape(x_label)}</text>')
    for i, (name, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(pts))
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="{1.5 if spark else 2}"'
                   f' points="{coords}"><title>{escape(name)}</title></polyline>')
        if not spark and len(pts) <= 60:
            for x, y in pts:
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}">'
                           f"<title>{escape(name)} {_fmt(x)}: {_fmt(y)}</title></circle>")
        if not spark and len(series) > 1:
            out.append(f'<text x="{pad_l + 6}" y="{pad_t + 12 + 12 * i}" font-size="11" '
                       f'fill="{color}">{escape(name)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
