"""Reading fields of a client frame: the wrong type or a missing field is ``bad_request``
with a message naming the field, never an exception that escapes."""

from __future__ import annotations

from datetime import datetime

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from rooms.errors import ActionError
from rooms.frames import Code

_MISSING = object()
MAX_INT = 2**53  # what a JavaScript client can send exactly


def _get(frame: dict, name: str, required: bool):
    value = frame.get(name, _MISSING)
    # null is no value: absent for an optional field, missing for a required one.
    if value is _MISSING or value is None:
        if required:
            raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' is required.") % {"name": name})
        return None
    return value


def string(frame: dict, name: str, *, max_len: int, required: bool = True, min_len: int = 1) -> str | None:
    value = _get(frame, name, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' must be a string.") % {"name": name})
    if len(value.strip()) < min_len:
        raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' is empty.") % {"name": name})
    if len(value) > max_len:
        raise ActionError(
            Code.TOO_LARGE,
            _("Field '%(name)s' is longer than %(max)d characters.") % {"name": name, "max": max_len},
        )
    return value


def integer(frame: dict, name: str, *, min_value: int = 0, max_value: int = MAX_INT, required: bool = True) -> int | None:
    value = _get(frame, name, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' must be an integer.") % {"name": name})
    if not min_value <= value <= max_value:
        raise ActionError(
            Code.BAD_REQUEST,
            _("Field '%(name)s' must be between %(min)d and %(max)d.") % {"name": name, "min": min_value, "max": max_value},
        )
    return value


def boolean(frame: dict, name: str) -> bool:
    value = _get(frame, name, True)
    if not isinstance(value, bool):
        raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' must be true or false.") % {"name": name})
    return value


def identifier(frame: dict, name: str) -> int:
    """Ids are strings in the protocol; an integer is accepted too."""
    value = _get(frame, name, True)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' must be an id.") % {"name": name})


def timestamp(frame: dict, name: str, *, required: bool = False) -> datetime | None:
    value = _get(frame, name, required)
    if value is None:
        return None
    parsed = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ActionError(
            Code.BAD_REQUEST,
            _("Field '%(name)s' must be an ISO 8601 time with a UTC offset.") % {"name": name},
        )
    return parsed
