"""Charts of the value, voice and churn pages, drawn like ``web.charts``: inline SVG, no script."""

import datetime as dt
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString

from web.charts import _fmt, _svg


def value_bars(
    rows: Sequence[tuple[str, float, str]], *, label: str, low: float = 0.0, high: float | None = None
) -> SafeString:
    """One horizontal bar per (label, value, text) from zero; ``low`` below 0 draws a zero line."""
    width, row, label_w, text_w = 460.0, 28.0, 140.0, 90.0
    peak = high if high is not None else max((v for _, v, _ in rows), default=0.0) or 1.0
    bar_w = width - label_w - text_w
    span = (peak - low) or 1.0

    def x(value: float) -> float:
        return label_w + bar_w * (value - low) / span

    parts = []
    if low < 0:
        parts.append(f'<line class="axis" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="0" y2="{row * len(rows)}"/>')
    for i, (name, value, text) in enumerate(rows):
        y = i * row + 4
        left, right = sorted((x(0), x(value)))
        css = "hbar bar-negative" if value < 0 else "hbar bar-positive"
        parts.append(
            f'<text class="label" x="0" y="{y + 14}">{escape(name[:22])}</text>'
            f'<rect class="{css}" x="{left:.1f}" y="{y}" rx="3" height="{row - 10}"'
            f' width="{max(right - left, 1 if value else 0):.1f}">'
            f"<title>{escape(name)}: {escape(text)}</title></rect>"
            f'<text class="value" x="{max(x(0), x(value)) + 6:.1f}" y="{y + 14}">{escape(text)}</text>'
        )
    if not rows:
        parts.append(f'<text class="empty" x="{width / 2}" y="18" text-anchor="middle">No data</text>')
    return _svg(width, row * max(len(rows), 1) + 4, "".join(parts), label=label, css="chart bars")


def month_columns(
    points: Sequence[tuple[dt.date, float | None]], *, label: str, low: float, high: float, unit: str = ""
) -> SafeString:
    """One column per month from zero (or ``low`` when it is above zero); a month without data is a gap."""
    width, height = 640.0, 180.0
    left, right, top, bottom = 40.0, 10.0, 10.0, 24.0
    inner_w, inner_h = width - left - right, height - top - bottom
    slot = inner_w / max(len(points), 1)
    base = max(low, 0.0)

    def y(value: float) -> float:
        return top + inner_h * (high - value) / (high - low)

    parts = []
    for tick in sorted({low, base, high}):
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="tick" x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>'
        )
    for i, (month, value) in enumerate(points):
        cx = left + slot * (i + 0.5)
        parts.append(
            f'<text class="tick" x="{cx:.1f}" y="{height - 6}" text-anchor="middle">{month:%b}</text>'
        )
        if value is None:
            continue
        top_y, bottom_y = sorted((y(value), y(base)))
        css = "bar bar-negative" if value < base else "bar"
        parts.append(
            f'<rect class="{css}" x="{cx - slot * 0.35:.1f}" y="{top_y:.1f}" width="{slot * 0.7:.1f}"'
            f' height="{max(bottom_y - top_y, 1):.1f}">'
            f"<title>{month:%b %Y}: {_fmt(value)}{unit}</title></rect>"
        )
    if all(value is None for _, value in points):
        parts.append(
            f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">No answers</text>'
        )
    return _svg(width, height, "".join(parts), label=label)
