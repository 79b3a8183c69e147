"""Content negotiation: an unknown ``?format=`` is a 400 naming the parameter, not a bare 404.

DRF answers 404 when ``?format=`` names no renderer, which reads as "no such resource" and is
not among an operation's documented answers (an API fuzzer finds it at once). The formats are
the renderers' (``json``, and ``api`` for the browsable API).
"""

from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation


class FormatCheckedNegotiation(DefaultContentNegotiation):
    def filter_renderers(self, renderers, format):
        kept = [renderer for renderer in renderers if renderer.format == format]
        if not kept:
            known = ", ".join(sorted({renderer.format for renderer in renderers}))
            raise ValidationError({"format": [f"Unknown format {format!r}: use one of {known}."]})
        return kept
