"""Row-by-row validation of incoming batches (API bodies and CSV files alike).

Each field has a parser that turns a raw value (JSON value or CSV string) into a Python value or
raises ``ValueError`` with a message a human can act on. A batch is validated whole, and every
bad field is reported as ``{"index", "field", "message"}`` before anything is stored.
"""

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.dateparse import parse_date, parse_datetime

MAX_ERRORS_REPORTED = 1000
# PostgreSQL refuses time zone displacements beyond this (Python allows up to 24 hours).
MAX_UTC_OFFSET = dt.timedelta(hours=15, minutes=59)


class BatchInvalid(Exception):
    """A batch with at least one bad row; nothing of it was stored."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__(f"{len(errors)} invalid field(s), first: {errors[0] if errors else ''}")

    def as_response_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"errors": self.errors[:MAX_ERRORS_REPORTED]}
        if len(self.errors) > MAX_ERRORS_REPORTED:
            body["error_count"] = len(self.errors)
        return body


def row_error(index: int, field: str | None, message: str) -> dict[str, Any]:
    return {"index": index, "field": field, "message": message}


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


# --- parsers ------------------------------------------------------------------------------


def text(max_length: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        value = value.strip()
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    return parse


def long_text(value: Any) -> str:
    return text(100_000)(value)


def choice(options: Iterable[str]) -> Callable[[Any], str]:
    allowed = tuple(options)

    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}")
        return value.strip().lower()

    return parse


def aware_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date-time string with a time zone")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError("is not a valid ISO-8601 date-time (e.g. 2026-01-31T14:05:00Z)")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must include a time zone (e.g. Z or +02:00)")
    if abs(parsed.utcoffset()) > MAX_UTC_OFFSET:
        raise ValueError("has a time zone offset out of range (at most 15:59 from UTC)")
    if not 1970 <= parsed.year <= 2200:
        raise ValueError("is out of range (years 1970 to 2200)")
    # In UTC: PostgreSQL stores the instant, and an odd offset never reaches the database.
    return parsed.astimezone(dt.UTC)


def date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise ValueError("must be a date string (YYYY-MM-DD)")
    try:
        parsed = parse_date(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError("is not a valid date (YYYY-MM-DD)")
    return parsed


def decimal(max_digits: int, places: int, *, minimum: Decimal | None = None) -> Callable[[Any], Decimal]:
    limit = Decimal(10) ** (max_digits - places)

    def parse(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError('must be a decimal number (e.g. "12.50")')
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError('must be a decimal number (e.g. "12.50")') from None
        if not number.is_finite():
            raise ValueError("must be a finite number")
        # copy_abs(), not abs(): an exponent like 1e999999999 overflows the arithmetic context.
        if number.copy_abs() >= limit:
            raise ValueError(f"must be less than {limit} in absolute value")
        try:
            quantized = number.quantize(Decimal(1).scaleb(-places))
        except ArithmeticError:
            raise ValueError(f"must have at most {places} decimal places") from None
        if number != quantized:
            raise ValueError(f"must have at most {places} decimal places")
        if minimum is not None and number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return quantized

    return parse


def integer(minimum: int, maximum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError("must be an integer") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ValueError("must be an integer")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    return parse


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "y", "t"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "n", "f"}:
        return False
    raise ValueError("must be true or false")


def _refuse_constant(name: str):
    raise ValueError(f"must not contain {name}")


def json_object(value: Any) -> dict:
    return json_object_and_text(value)[0]


def json_object_text(value: Any) -> str:
    """The object as the JSON text a JSON column stores (events are COPYed as text)."""
    return json_object_and_text(value)[1]


def json_object_and_text(value: Any) -> tuple[dict, str]:
    if isinstance(value, str):  # CSV cells carry JSON as text
        try:
            value = json.loads(value, parse_constant=_refuse_constant)
        except json.JSONDecodeError:
            raise ValueError("must be a JSON object") from None
        except RecursionError:
            raise ValueError("is nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    try:
        encoded = json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError("must not contain NaN or Infinity") from None
    except RecursionError:
        raise ValueError("is nested too deeply") from None
    if "\\u0000" in encoded:
        raise ValueError("must not contain NUL characters")
    if len(encoded) > 64_000:
        raise ValueError("must be at most 64 KB once encoded")
    return value, encoded


def account_ref(value: Any) -> str | int:
    """An account named by its external id (string) or its Lifeline id (integer)."""
    if isinstance(value, bool):
        raise ValueError("must be the account's external_id (string) or id (integer)")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip():
        return text(255)(value)
    raise ValueError("must be the account's external_id (string) or id (integer)")


def contact_ref(value: Any) -> str:
    """A contact named by email (contains @) or by external id."""
    ref = text(255)(value)
    if "@" in ref:
        if len(ref) > 254:
            raise ValueError("must be at most 254 characters for an email")
        try:
            validate_email(ref)
        except ValidationError:
            raise ValueError("is not a valid email address") from None
        return ref.lower()
    return ref


# --- rows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    parse: Callable[[Any], Any]
    required: bool = False
    default: Any = None


def parse_rows(
    raw_rows: Iterable[Any], fields: Iterable[Field], *, first_index: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse every row; return ``(rows, errors)``. Blank values count as missing."""
    fields = tuple(fields)
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_rows, start=first_index):
        if not isinstance(raw, Mapping):
            errors.append(row_error(index, None, "each row must be a JSON object"))
            rows.append({})
            continue
        row: dict[str, Any] = {}
        for field in fields:
            value = raw.get(field.name)
            if is_blank(value):
                if field.required:
                    errors.append(row_error(index, field.name, "is required"))
                row[field.name] = field.default
                continue
            try:
                row[field.name] = field.parse(value)
            except ValueError as exc:
                errors.append(row_error(index, field.name, str(exc)))
        rows.append(row)
    return rows, errors
