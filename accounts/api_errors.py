"""Domain errors mapped to HTTP in one place (400 with field and row; never a 500 for input)."""

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.rows import BatchInvalid

# Seconds a client should wait before resending after a database outage (the Retry-After header).
DATABASE_RETRY_AFTER_SECONDS = 5


def exception_handler(exc, context):
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is unreachable (restarting, failing over): nothing was stored by this
        # request's transaction, so the client resends the same batch (same idempotency keys).
        return Response(
            {"detail": "The database is unavailable; resend the request in a few seconds."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, BatchInvalid):
        return Response(exc.as_response_body(), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body too large: the limit is 10 MB (and 10,000 rows per batch)."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
