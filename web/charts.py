"""Charts drawn on the server as inline SVG: no script, no asset from the internet.

Each function takes plain numbers and returns safe markup; colours come from the CSS classes
(``band-red`` …) of static/css/base.css so the page and the charts agree.
"""

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

BAND_ORDER = ("red", "yellow", "green", "unscored")
BAND_LABELS = {"red": "Red", "yellow": "Yellow", "green": "Green", "unscored": "Unscored"}


def _svg(
    width: float, height: float, body: str, *, label: str, css: str = "chart", aspect: str = "xMidYMid meet"
) -> SafeString:
    return mark_safe(  # noqa: S308 - every piece of text in body was escaped by its builder
        f'<svg class="{css}" viewBox="0 0 {width:g} {height:g}" role="img" aria-label="{escape(label)}"'
        f' preserveAspectRatio="{aspect}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def sparkline(
    series: Sequence[tuple[dt.datetime, float]], *, now: dt.datetime, days: int = 90, band: str | None = None
) -> SafeString:
    """A 90-day score trend in a 100 x 24 box; time on x, 0-100 on y."""
    width, height, pad = 100.0, 24.0, 2.0
    if not series:
        return mark_safe('<span class="muted small">no history</span>')
    start = now - dt.timedelta(days=days)
    span = (now - start).total_seconds()

    def x(at: dt.datetime) -> float:
        return pad + (width - 2 * pad) * max(0.0, (at - start).total_seconds()) / span

    def y(score: float) -> float:
        return pad + (height - 2 * pad) * (1 - score / 100)

    points = " ".join(f"{x(at):.1f},{y(score):.1f}" for at, score in series)
    last_at, last = series[-1]
    body = (
        f'<line class="axis" x1="{pad}" x2="{width - pad}" y1="{y(50):.1f}" y2="{y(50):.1f}"/>'
        f'<polyline class="line band-stroke-{escape(band or "unscored")}" points="{points}"/>'
        f'<circle class="dot band-fill-{escape(band or "unscored")}" cx="{x(last_at):.1f}"'
        f' cy="{y(last):.1f}" r="2"/>'
    )
    first = series[0][1]
    return _svg(
        width, height, body, label=f"Score {_fmt(first)} → {_fmt(last)} over {days} days", css="spark"
    )


def score_chart(
    history: Sequence[tuple[dt.datetime, float, str | None]],
    *,
    now: dt.datetime,
    days: int,
    red_below: float | None,
    green_from: float | None,
) -> SafeString:
    """The score history with the band zones behind it; dots coloured by the band of each score."""
    width, height = 640.0, 200.0
    left, right, top, bottom = 34.0, 10.0, 10.0, 24.0
    inner_w, inner_h = width - left - right, height - top - bottom
    start = now - dt.timedelta(days=days)
    if history and history[0][0] > start + dt.timedelta(days=7):
        start = history[0][0] - dt.timedelta(days=1)  # a young account: zoom on the scores it has
    span = (now - start).total_seconds()

    def x(at: dt.datetime) -> float:
        return left + inner_w * max(0.0, (at - start).total_seconds()) / span

    def y(score: float) -> float:
        return top + inner_h * (1 - score / 100)

    parts = []
    if red_below is not None and green_from is not None:
        zones = (("red", 0, red_below), ("yellow", red_below, green_from), ("green", green_from, 100))
        for band, low, high in zones:
            if high > low:
                parts.append(
                    f'<rect class="zone band-fill-{band}" x="{left}" width="{inner_w}"'
                    f' y="{y(high):.1f}" height="{y(low) - y(high):.1f}"/>'
                )
    thresholds = [t for t in (red_below, green_from) if t is not None]
    ticks = {0, 100, *thresholds} | ({50} if all(abs(50 - t) >= 8 for t in thresholds) else set())
    for tick in sorted(ticks):
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="tick" x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>'
        )
    for fraction in (0, 0.5, 1):
        at = start + dt.timedelta(seconds=span * fraction)
        anchor = ("start", "middle", "end")[int(fraction * 2)]
        parts.append(
            f'<text class="tick" x="{left + inner_w * fraction:.1f}" y="{height - 6}"'
            f' text-anchor="{anchor}">{at:%b %-d}</text>'
        )
    scored = [(at, score, band) for at, score, band in history if score is not None]
    if scored:
        points = " ".join(f"{x(at):.1f},{y(score):.1f}" for at, score, _ in scored)
        parts.append(f'<polyline class="line" points="{points}"/>')
        for at, score, band in scored[-60:]:
            parts.append(
                f'<circle class="dot band-fill-{escape(band or "unscored")}"'
                f' cx="{x(at):.1f}" cy="{y(score):.1f}" r="3">'
                f"<title>{at:%Y-%m-%d}: {_fmt(score)}</title></circle>"
            )
    else:
        parts.append(
            f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">No scores yet</text>'
        )
    label = f"Health score since {start:%b %-d}"
    return _svg(width, height, "".join(parts), label=label)


def activity_chart(days: Sequence[tuple[dt.date, int]], *, start: dt.date, end: dt.date) -> SafeString:
    """Events per day from ``start`` to ``end`` (inclusive) as bars; days without events are gaps."""
    width, height = 640.0, 120.0
    left, right, top, bottom = 34.0, 10.0, 8.0, 22.0
    inner_w, inner_h = width - left - right, height - top - bottom
    total_days = (end - start).days + 1
    peak = max((count for _, count in days), default=0)
    slot = inner_w / total_days
    parts = [
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + inner_h}" y2="{top + inner_h}"/>',
        f'<text class="tick" x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>',
        f'<text class="tick" x="{left - 4}" y="{top + inner_h}" text-anchor="end">0</text>',
        f'<text class="tick" x="{left}" y="{height - 5}">{start:%b %-d}</text>',
        f'<text class="tick" x="{width - right}" y="{height - 5}" text-anchor="end">{end:%b %-d}</text>',
    ]
    if peak:
        for day, count in days:
            index = (day - start).days
            if not 0 <= index < total_days or not count:
                continue
            bar = max(1.0, inner_h * count / peak)
            parts.append(
                f'<rect class="bar" x="{left + index * slot + slot * 0.15:.1f}" y="{top + inner_h - bar:.1f}"'
                f' width="{max(slot * 0.7, 1):.1f}" height="{bar:.1f}">'
                f"<title>{day:%Y-%m-%d}: {count}</title></rect>"
            )
    else:
        parts.append(
            f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">No activity</text>'
        )
    return _svg(width, height, "".join(parts), label=f"Events per day, {start:%b %-d} to {end:%b %-d}")


def band_bars(values: dict[str, Decimal | int], *, money: bool = True) -> SafeString:
    """One horizontal bar per band, the value written after it."""
    width, row, label_w = 420.0, 30.0, 78.0
    bands = [band for band in BAND_ORDER if band in values]
    peak = max((float(values[b]) for b in bands), default=0.0) or 1.0
    bar_w = width - label_w - 110
    parts = []
    for i, band in enumerate(bands):
        value = float(values[band])
        y = i * row + 4
        text = f"{value:,.0f}" if money else f"{int(value)}"
        parts.append(
            f'<text class="label" x="0" y="{y + 15}">{BAND_LABELS[band]}</text>'
            f'<rect class="hbar band-fill-{band}" x="{label_w}" y="{y}" rx="3" height="{row - 10}"'
            f' width="{max(bar_w * value / peak, 1 if value else 0):.1f}"/>'
            f'<text class="value" x="{label_w + bar_w * value / peak + 6:.1f}" y="{y + 15}">{text}</text>'
        )
    return _svg(width, row * len(bands) + 4, "".join(parts), label="ARR by health band", css="chart bars")


def stacked_band_bar(counts: dict[str, int]) -> SafeString:
    """A single bar split by band, for a book's mix of accounts."""
    total = sum(counts.values())
    width, height = 200.0, 12.0
    if not total:
        return mark_safe('<span class="muted small">no accounts</span>')
    parts, x = [], 0.0
    for band in BAND_ORDER:
        n = counts.get(band, 0)
        if not n:
            continue
        w = width * n / total
        parts.append(
            f'<rect class="band-fill-{band}" x="{x:.2f}" y="0" width="{w:.2f}" height="{height}">'
            f"<title>{BAND_LABELS[band]}: {n}</title></rect>"
        )
        x += w
    label = ", ".join(f"{BAND_LABELS[b]} {counts.get(b, 0)}" for b in BAND_ORDER)
    return _svg(width, height, "".join(parts), label=label, css="stack", aspect="none")


def funnel(stages: Sequence[tuple[str, int]]) -> SafeString:
    """Accounts per stage as centred bars, widest for the largest stage."""
    width, row = 560.0, 38.0
    peak = max((n for _, n in stages), default=0) or 1
    parts = []
    for i, (name, n) in enumerate(stages):
        y = i * row + 3
        if n:
            w = max(width * 0.6 * n / peak, 4.0)
            x = (width * 0.6 - w) / 2
            parts.append(
                f'<rect class="funnel-bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 8}" rx="4"/>'
            )
        else:  # an empty stage is an outline, not a sliver that reads as "a few"
            parts.append(
                f'<rect class="funnel-empty" x="{width * 0.2:.1f}" y="{y}" width="{width * 0.2:.1f}" '
                f'height="{row - 8}" rx="4"/>'
            )
        parts.append(
            f'<text class="label" x="{width * 0.6 + 12:.1f}" y="{y + 20}">{escape(name)}'
            f'<tspan class="value"> {n or "none"}</tspan></text>'
        )
    return _svg(width, row * len(stages) + 4, "".join(parts), label="Accounts per stage", css="chart funnel")
