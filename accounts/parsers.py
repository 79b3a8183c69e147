"""Request parsers of the API."""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """JSON, minus what valid JSON can carry but no database column can store.

    A ``\\ud800`` escape decodes to a lone surrogate, which cannot be encoded as UTF-8: left in,
    it fails deep inside the database driver (a 500). Such a body is refused whole with a 400.
    NUL characters are left to the field validators, which name the field.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(
                "JSON parse error - strings must not contain lone surrogates (\\ud800-\\udfff)."
            ) from None
        except (ValueError, RecursionError):
            raise ParseError("JSON parse error - nested too deeply or not a finite number.") from None
        return data
