"""Operational endpoints: liveness and readiness for load balancers, metrics, the pipeline status page."""

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Account, Contact
from accounts.visibility import is_admin
from ops.exports import export_subject, write_export
from ops.metrics import exposition
from ops.readiness import readiness
from ops.status import (
    PIPELINE_STEPS,
    SCHEDULED_JOBS,
    describe_counts,
    outbox_status,
    pipeline_status,
    recent_failures,
)


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


@login_required
@require_GET
def pipeline(request: HttpRequest) -> HttpResponse:
    """Admins only: each step's last run, how long it took, what it changed, and any failure."""
    if not is_admin(request.user):
        raise PermissionDenied

    def rows(steps):
        return [
            {
                "status": status,
                "changes": describe_counts(status.last_run.counts) if status.last_run else [],
            }
            for status in pipeline_status(steps)
        ]

    return render(
        request,
        "ops/pipeline.html",
        {
            "rows": rows(PIPELINE_STEPS),
            "jobs": rows(SCHEDULED_JOBS),
            "failures": recent_failures(),
            "outbox": outbox_status(),
        },
    )


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; with ``LIFELINE_METRICS_TOKEN`` set, only for ``Authorization: Bearer <it>``."""
    token = settings.LIFELINE_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(exposition(), content_type="text/plain; version=0.0.4; charset=utf-8")


@login_required
@require_GET
def export(request: HttpRequest, model: type[Account] | type[Contact], pk: int) -> HttpResponse:
    """Admins only: everything about one account or contact as a JSON download (audited)."""
    if not is_admin(request.user):
        raise PermissionDenied
    root = get_object_or_404(model, pk=pk)
    name = model._meta.model_name
    response = HttpResponse(content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="lifeline-{name}-{pk}.json"'
    write_export(export_subject(root, actor=request.user), response)
    return response
