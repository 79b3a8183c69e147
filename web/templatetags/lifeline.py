"""Display helpers for the pages: money, percentages, signed changes, band labels."""

from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()


@register.filter
def money(value) -> str:
    """12345.67 → "12,346"; None → "—"."""
    if value in (None, ""):
        return "—"
    return intcomma(int(Decimal(value).quantize(Decimal(1))))


@register.filter
def short_money(value) -> str:
    """1234567 → "1.2M", 45300 → "45.3k"."""
    if value in (None, ""):
        return "—"
    number = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{number:.0f}"


@register.filter
def percent(value, places: int = 0) -> str:
    """0.734 → "73%"; None → "—"."""
    if value is None:
        return "—"
    return f"{float(value) * 100:.{int(places)}f}%"


@register.filter
def signed(value) -> str:
    """A change with its sign: +4.5, -3.0 (a true minus sign), 0."""
    if value is None:
        return "—"
    number = float(value)
    if number > 0:
        return f"+{number:g}"
    if number < 0:
        return f"\u2212{abs(number):g}"
    return "0"


@register.filter
def band_label(band) -> str:
    return {"red": "Red", "yellow": "Yellow", "green": "Green"}.get(band or "", "Unscored")


@register.filter
def get(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def number(value) -> str:
    """A raw measure value as read: 3 → "3", 0.8333 → "0.83", None → "no data"."""
    if value is None:
        return "no data"
    number = float(value)
    return f"{number:.2f}".rstrip("0").rstrip(".") if number != int(number) else str(int(number))
