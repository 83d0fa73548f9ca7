"""The one error type every service raises; consumers turn it into an ``error`` frame,
views into a 4xx JSON body (same code)."""

import contextlib

from django.utils import translation

from rooms.frames import Code

HTTP_STATUS = {
    Code.BAD_REQUEST: 400,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.MUTED: 403,
    Code.RATE_LIMITED: 429,
    Code.TOO_LARGE: 413,
    Code.ROOM_CLOSED: 409,
    Code.BALLOT_CLOSED: 409,
    Code.ALREADY_VOTED: 409,
    Code.NOT_ELIGIBLE: 403,
    Code.UNAVAILABLE: 503,
}


class ActionError(Exception):
    def __init__(self, code: str, message: str, *, status: int | None = None, **extra):
        super().__init__(message)
        self.code = code
        self.message = str(message)
        self.extra = extra
        self.http_status = status or HTTP_STATUS.get(code, 400)


def speaking(language: str | None):
    """``translation.override(language)`` for a frame's refusals, or nothing when that is
    already the active language: a batch (rooms.batcher) runs in its first frame's
    language, the language of most of its frames, and activating one per frame showed in
    py-spy (many small rooms)."""
    if not language or language == translation.get_language():
        return contextlib.nullcontext()
    return translation.override(language)
