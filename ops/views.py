"""Operational endpoints: liveness and readiness for load balancers."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops.readiness import readiness


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving; touches nothing else (no database, no broker)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: database and broker reachable, migrations applied; 503 naming what failed."""
    checks = readiness()
    failed = {name: result for name, result in checks.items() if result != "ok"}
    return JsonResponse(
        {"status": "fail" if failed else "ok", "checks": checks, "failed": sorted(failed)},
        status=503 if failed else 200,
    )
