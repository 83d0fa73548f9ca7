"""JSON errors on every path (PROTOCOL.md: ``{"error": {"code", "message"}}``, never a
stack trace), for the API views and for Django's own 400/403/404/500 and CSRF failures."""

from django.http import JsonResponse
from django.utils.translation import gettext as _


class ApiError(Exception):
    """Raised by views and services to answer with a 4xx JSON error."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status


def error_response(code: str, message: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": str(message), **extra}}, status=status)


def bad_request(request, exception=None):
    return error_response("bad_request", _("Bad request."), 400)


def permission_denied(request, exception=None):
    return error_response("forbidden", _("You may not do this."), 403)


def page_not_found(request, exception=None):
    return error_response("not_found", _("Not found."), 404)


def server_error(request):
    return error_response("server_error", _("Internal error. It has been logged."), 500)


def csrf_failure(request, reason=""):
    return error_response("csrf_failed", _("CSRF check failed: send the X-CSRFToken header."), 403)
