"""A one-module Django site (URLconf and views) with no sloguard in its code."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path

from sloguard.context import current_request


def item(request: HttpRequest, item_id: int) -> HttpResponse:
    ctx = current_request()
    return HttpResponse(f"item {item_id} {ctx.request_id if ctx else '-'}")


def legacy(request: HttpRequest, code: str) -> HttpResponse:
    return HttpResponse(code)


api = [path("orders/<uuid:order_id>/", item), path("files/<path:name>", item)]

urlpatterns = [
    path("items/<int:item_id>", item),
    path("api/", include(api)),
    re_path(r"^legacy/(?P<code>\w+)$", legacy),
]


def configure() -> None:
    """Configure Django for this site once per process (its settings are global)."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["testserver", "localhost", "app.test"],
            SECRET_KEY="hook-tests-only",  # noqa: S106
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
