"""Request parsers of the API."""

import json
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils.json import strict_constant

# The only way a decoded JSON text can hold a lone surrogate is a \uD800-\uDFFF escape (raw
# surrogates are not valid UTF-8): without one, there is nothing to check.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


class StrictJSONParser(JSONParser):
    """JSON, minus what valid JSON can carry but no database column can store.

    A ``\\ud800`` escape decodes to a lone surrogate, which cannot be encoded as UTF-8: left in,
    it fails deep inside the database driver (a 500). Such a body is refused whole with a 400.
    NUL characters are left to the field validators, which name the field.

    The body is checked by re-encoding it only when its text has a surrogate escape at all: for a
    10,000-event batch, re-encoding every body cost about as much as parsing it.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
            data = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply or not a finite number.") from None
        if SURROGATE_ESCAPE.search(text):
            _refuse_lone_surrogates(data)
        return data


def _refuse_lone_surrogates(data) -> None:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError(
            "JSON parse error - strings must not contain lone surrogates (\\ud800-\\udfff)."
        ) from None
    except (ValueError, RecursionError):
        raise ParseError("JSON parse error - nested too deeply or not a finite number.") from None
