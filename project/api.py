"""The JSON API's plumbing, shared by every app's views: method check, login check, JSON
body parsing, and service errors turned into ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import functools
import json
import logging
import re

from django.db import DatabaseError, DataError
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from project.errors import error_response
from rooms.errors import ActionError

logger = logging.getLogger("palabre.api")

# Ids are decimal strings that fit a bigint: anything else names nothing (404), and never
# reaches a query where SQLite overflows or PostgreSQL refuses it (found by schemathesis).
ID = re.compile(r"[0-9]{1,18}")


def method_not_allowed(methods) -> HttpResponse:
    response = error_response("method_not_allowed", _("Method not allowed."), 405)
    response["Allow"] = ", ".join(methods)
    return response


def allow(*methods):
    """The method check alone, for views that shape their own answer (health, keys)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return method_not_allowed(methods)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def api(*, methods=("GET",), login_required=False):
    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return method_not_allowed(methods)
            if login_required and not request.user.is_authenticated:
                return error_response("not_authenticated", _("Log in first."), 401)
            if any(name.endswith("_id") and not ID.fullmatch(str(value)) for name, value in kwargs.items()):
                return error_response("not_found", _("Not found."), 404)
            # PostgreSQL text can't hold NUL: refused here rather than failing in a query.
            if any("\x00" in value for values in request.GET.lists() for value in values[1]):
                return error_response("bad_request", _("A parameter holds a NUL character."), 400)
            try:
                result = view(request, *args, **kwargs)
            except ActionError as error:
                return error_response(error.code, error.message, error.http_status, **error.extra)
            except DataError:
                # A value the database refuses (out of range, NUL): the client's input.
                logger.info("data error in %s", view.__name__, exc_info=True)
                return error_response("bad_request", _("A value is out of range."), 400)
            except DatabaseError:
                logger.warning("database error in %s", view.__name__, exc_info=True)
                return error_response("unavailable", _("A backing service is unavailable."), 503)
            if isinstance(result, HttpResponse):
                return result  # a view that shapes its own body (e.g. one serialised once)
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
