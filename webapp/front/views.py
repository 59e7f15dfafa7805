"""Pages that are not one app's own: home, health, error pages."""

from django.db import connection
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.views.decorators.cache import never_cache

from webapp.celery import app as celery_app
from webapp.front import health


def home(request):
    if request.user.is_authenticated:
        return redirect("course_list")
    return render(request, "front/home.html")


@never_cache
def healthz(request):
    """Report whether the database, Redis and at least one worker answer (503 if any is down)."""
    report = {
        "database": health.check_database(connection),
        "redis": health.check_redis(),
        "worker": health.check_workers(celery_app),
    }
    ok = all(part["ok"] for part in report.values())
    return JsonResponse({"status": "ok" if ok else "degraded", **report}, status=200 if ok else 503)


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": "Not found.", "errors": {}}, status=404)
    return render(request, "errors/404.html", status=404)


def forbidden(request, exception=None):
    # A refusal that carries its reason (an archived class) says it; a bare one stays generic.
    reason = getattr(exception, "message", "")
    if _wants_json(request):
        return JsonResponse({"detail": reason or "You may not do this.", "errors": {}}, status=403)
    return render(request, "errors/403.html", {"reason": reason}, status=403)


def server_error(request):
    if _wants_json(request):
        return JsonResponse({"detail": "Server error; it was logged.", "errors": {}}, status=500)
    # No context processors: whatever broke the request must not break its error page too.
    return HttpResponseServerError(loader.get_template("errors/500.html").render())


def bad_request(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": "Bad request.", "errors": {}}, status=400)
    return render(request, "errors/400.html", status=400)
