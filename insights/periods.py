"""Report periods given in query strings: ``?months=`` (voice) and ``?days=`` (churn)."""

import datetime as dt

MAX_MONTHS = 36
MAX_DAYS = 3650


def parse_whole(raw: str | None, *, default: int, maximum: int) -> int:
    """A whole number from 1 to ``maximum`` given as text; ``default`` when absent or empty."""
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ValueError(f"must be a whole number from 1 to {maximum}")
    return int(raw)


def month_starts(*, today: dt.date, months: int) -> list[dt.date]:
    """The first days of the last ``months`` calendar months, this one included, oldest first."""
    year, month = today.year, today.month
    starts = []
    for _ in range(months):
        starts.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
