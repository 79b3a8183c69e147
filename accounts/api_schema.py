"""OpenAPI description of the answers every API view can give besides its success.

drf-spectacular documents only the success answer of an operation; clients (and the fuzz test
in tests/accounts/test_api_fuzz.py) also meet these, so every view of the API declares them:

- 400 for a body or query that does not validate (field → messages, or batch row errors), on
  every operation (an unknown ``?format=`` at least);
- 401 without valid credentials, where the view authenticates;
- 403 for unsafe methods (role checks, CSRF on session auth), and for reads a role may be refused;
- 404 for an object outside the caller's scope and for a page past the end of a list;
- 413 for a body over the limit, 415 for a body that is not JSON, form or multipart;
- 429 past a rate limit (or the sign-in attempt limit), with Retry-After.

Views use it with ``schema = ErrorsDocumentedAutoSchema()``. Only GET lists are paginated and
filtered: an operation answering a plain list to a POST gets neither.
"""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import permissions, serializers


class ErrorDetailSerializer(serializers.Serializer):
    """``{"detail": "..."}``: authentication, permission, not found, parse and size errors."""

    detail = serializers.CharField()


class RowErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the row in the batch (0-based).")
    field = serializers.CharField(allow_null=True, help_text="The field at fault; null for the whole row.")
    message = serializers.CharField()


class BatchErrorSerializer(serializers.Serializer):
    """A refused batch: every bad field of every row; nothing of the batch was stored."""

    errors = RowErrorSerializer(many=True)
    error_count = serializers.IntegerField(
        required=False, help_text="Present when there are more errors than the 1,000 listed."
    )


FIELD_ERRORS = OpenApiResponse(
    response={
        "type": "object",
        "additionalProperties": {},
        "description": 'Field name → list of messages (e.g. {"name": ["This field is required."]}), '
        'or {"detail": "..."} for a body that is not valid JSON.',
    },
    description="Invalid input",
)
BATCH_ERRORS = OpenApiResponse(
    response=PolymorphicProxySerializer(
        component_name="BatchOrParseError",
        serializers=[BatchErrorSerializer, ErrorDetailSerializer],
        resource_type_field_name=None,
    ),
    description="Invalid batch (row errors, nothing stored), or a body that is not valid JSON",
)


def _detail(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorDetailSerializer, description=description)


class ErrorsDocumentedAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        has_body = self.method in ("POST", "PUT", "PATCH")
        errors: dict[str, OpenApiResponse] = {}
        # Every operation: a body or query that does not validate, or at least an unknown
        # ``?format=`` (accounts/negotiation.py).
        errors["400"] = FIELD_ERRORS
        if self.view.get_authenticators():
            errors["401"] = _detail("Missing or invalid credentials")
        if self.view.get_authenticators() and (
            self.method not in ("GET", "HEAD", "OPTIONS") or self._checks_role()
        ):
            errors["403"] = _detail("Not allowed for the caller's role (or CSRF check failed)")
        if "{" in self.path or self._is_list_view():
            errors["404"] = _detail("Not found in the caller's scope, or no such page")
        if self.view.get_throttles() or getattr(self.view, "limits_sign_in", False):
            errors["429"] = _detail("Too many requests (or sign-in attempts): see Retry-After")
        if has_body:
            errors["413"] = _detail("Body over 10 MB")
            errors["415"] = _detail("Unsupported media type")
        return errors

    def _checks_role(self) -> bool:
        """A permission beyond "signed in" (a manager's report, an admin's page) can refuse a GET."""
        return any(
            type(permission) not in (permissions.IsAuthenticated, permissions.AllowAny)
            for permission in self.view.get_permissions()
        )

    def _is_list_view(self, serializer=None) -> bool:
        return self.method == "GET" and super()._is_list_view(serializer)

    def _get_paginator(self):
        return super()._get_paginator() if self.method == "GET" else None


class AccountRefFieldExtension(OpenApiSerializerFieldExtension):
    """An account reference is written as an id or an external_id and read back as the id."""

    target_class = "accounts.serializers.AccountRefField"

    def map_serializer_field(self, auto_schema, direction):
        if direction == "response":
            return {"type": "integer", "description": "The account's id."}
        return {
            "oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1}],
            "description": "The account's id (integer) or external_id (string).",
        }


__all__ = [
    "BATCH_ERRORS",
    "BatchErrorSerializer",
    "ErrorDetailSerializer",
    "ErrorsDocumentedAutoSchema",
    "RowErrorSerializer",
]
