"""The JSON API's plumbing, shared by every app's views: method check, login check, JSON
body parsing, and service errors turned into ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import functools
import json
import logging

from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from project.errors import error_response
from rooms.errors import ActionError

logger = logging.getLogger("palabre.api")


def api(*, methods=("GET",), login_required=False):
    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = error_response("method_not_allowed", _("Method not allowed."), 405)
                response["Allow"] = ", ".join(methods)
                return response
            if login_required and not request.user.is_authenticated:
                return error_response("not_authenticated", _("Log in first."), 401)
            try:
                result = view(request, *args, **kwargs)
            except ActionError as error:
                return error_response(error.code, error.message, error.http_status, **error.extra)
            except DatabaseError:
                logger.warning("database error in %s", view.__name__, exc_info=True)
                return error_response("unavailable", _("A backing service is unavailable."), 503)
            if isinstance(result, tuple):
                body, status = result
            else:
                body, status = result, 200
            if status == 204:
                return HttpResponse(status=204)
            return JsonResponse(body, status=status, safe=False)

        return wrapper

    return decorate


def json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ActionError("bad_request", _("The body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise ActionError("bad_request", _("The body must be a JSON object."))
    return body


def query_int(request, name: str, *, default: int, minimum: int = 0, maximum: int = 2**62) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ActionError("bad_request", _("'%(name)s' must be an integer.") % {"name": name}) from None
    if not minimum <= value <= maximum:
        raise ActionError(
            "bad_request",
            _("'%(name)s' must be between %(min)d and %(max)d.") % {"name": name, "min": minimum, "max": maximum},
        )
    return value
