"""`POST /auth/token/` (API.md) issues a hashed, expiring token; `POST /auth/token/revoke/` revokes."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.tokens import issue_token, revoke_all_tokens, revoke_token
from accounts.parsers import StrictJSONParser


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True)


class RevokeSerializer(serializers.Serializer):
    all = serializers.BooleanField(required=False, default=False, help_text="Every token of the caller.")


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once; send it as `Authorization: Token <token>`.")
    expiry = serializers.DateTimeField()


class ObtainTokenView(APIView):
    """`POST /auth/token/` with `{"username", "password"}` → `{"token", "expiry"}`.

    The credentials are in the body: a stale `Authorization` header is not looked at. Sign-in
    attempts are limited per username (429 with Retry-After past the limit).
    """

    authentication_classes = ()
    permission_classes = ()
    parser_classes = (FormParser, MultiPartParser, StrictJSONParser)
    serializer_class = CredentialsSerializer

    @extend_schema(request=CredentialsSerializer, responses={200: IssuedTokenSerializer})
    def post(self, request: Request) -> Response:
        credentials = CredentialsSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=credentials.validated_data["username"],
            password=credentials.validated_data["password"],
        )
        retry_after = getattr(request._request, "login_retry_after", None)
        if retry_after:
            return Response(
                {"detail": f"Too many sign-in attempts for this username; retry in {retry_after} s."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(retry_after)},
            )
        if user is None:
            return Response(
                {"non_field_errors": ["Unable to log in with provided credentials."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        token, key = issue_token(user=user)
        return Response({"token": key, "expiry": token.expiry})


class RevokeTokenView(APIView):
    """`POST /auth/token/revoke/`: the token in the header stops working; `{"all": true}` revokes
    every token of the caller (an admin revokes anyone's in the admin, under Knox: Auth tokens)."""

    @extend_schema(
        request=RevokeSerializer,
        responses={200: inline_serializer("RevokeTokenResult", {"revoked": serializers.IntegerField()})},
    )
    def post(self, request: Request) -> Response:
        options = RevokeSerializer(data=request.data if isinstance(request.data, dict) else {})
        options.is_valid(raise_exception=True)
        if options.validated_data["all"]:
            return Response({"revoked": revoke_all_tokens(user=request.user)})
        if request.auth is None or not hasattr(request.auth, "digest"):
            return Response({"revoked": 0})  # signed in by session: no token to revoke
        revoke_token(token=request.auth)
        return Response({"revoked": 1})
