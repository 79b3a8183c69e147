"""API rate limits (DRF throttles) that tell the client where it stands.

Every throttled answer carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (seconds until a slot frees up); a 429 also ``Retry-After`` (DRF).
Rates come from LIFELINE_API_RATE_USER / LIFELINE_API_RATE_ANON; counters live in the default
cache (CACHE_URL: per process by default, shared with redis://).
"""

import math

from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _ReportsItsState:
    def allow_request(self, request, view) -> bool:
        allowed = super().allow_request(request, view)
        history = getattr(self, "history", None)
        if self.rate is None or history is None:
            return allowed
        remaining = max(self.num_requests - len(history), 0)
        reset = math.ceil(history[-1] + self.duration - self.now) if history else self.duration
        state = (self.num_requests, remaining, max(reset, 0))
        django_request = getattr(request, "_request", request)
        current = getattr(django_request, "rate_limit", None)
        if current is None or state[1] < current[1]:  # the tightest limit is the one to report
            django_request.rate_limit = state
        return allowed


class UserRateLimit(_ReportsItsState, UserRateThrottle):
    """Per signed-in user (anonymous callers by address)."""


class AnonRateLimit(_ReportsItsState, AnonRateThrottle):
    """Per address, for callers without credentials (the token endpoint, mostly)."""


class RateLimitHeadersMiddleware:
    """Copies the throttle's state onto the response as X-RateLimit-* headers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        state = getattr(request, "rate_limit", None)
        if state is not None:
            limit, remaining, reset = state
            response["X-RateLimit-Limit"] = str(limit)
            response["X-RateLimit-Remaining"] = str(remaining)
            response["X-RateLimit-Reset"] = str(reset)
        return response
