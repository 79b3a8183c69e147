"""Cross-cutting request handling."""

import re
import uuid

from django.conf import settings
from django.core.signals import request_finished
from django.http import JsonResponse

from config import logging as logging_context


class RequestBodyLimitMiddleware:
    """Refuse a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE before anything reads it.

    DRF's parsers read the request stream directly, past Django's own size check, so the limit
    is enforced here from the Content-Length header (413, with a JSON body saying why).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        if limit is not None and length > limit:
            return JsonResponse(
                {"detail": f"Request body too large: {length} bytes, the limit is {limit} bytes."},
                status=413,
            )
        return self.get_response(request)


class RequestIdMiddleware:
    """Give every request an id (the proxy's ``X-Request-ID`` when sane), log with it, return it.

    While the request is about one account (``/accounts/<id>/…``, in the pages or the API), its id
    is logged too.
    """

    VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
    ACCOUNT_PATH = re.compile(r"^/(?:api/v1/)?accounts/(\d+)/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        rid = given if self.VALID_ID.match(given) else uuid.uuid4().hex
        request.request_id = rid
        match = self.ACCOUNT_PATH.match(request.path_info)
        # Cleared on request_finished, not here: Django logs a 4xx/5xx after the middleware returns.
        logging_context.request_id.set(rid)
        logging_context.account_id.set(int(match.group(1)) if match else None)
        response = self.get_response(request)
        response["X-Request-ID"] = rid
        return response


def _forget_request_context(**kwargs) -> None:
    logging_context.request_id.set(None)
    logging_context.account_id.set(None)


request_finished.connect(_forget_request_context, dispatch_uid="lifeline-forget-request-context")
