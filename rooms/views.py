"""HTTP API of mediations and rooms (PROTOCOL.md). Each view reads its input, calls a
selector or service, and shapes the answer; authorisation lives in those functions."""

import json
import logging

from django.conf import settings
from django.http import HttpResponse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_ratelimit import core as ratelimit

from crypto.errors import CryptoError
from project.api import ID, allow, api, json_body, query_int
from project.errors import error_response
from rooms import log, record, registrations, selectors, services
from rooms.errors import ActionError
from rooms.frames import Code

logger = logging.getLogger("palabre.api")


def _mediation_item(mediation) -> dict:
    return {
        "id": str(mediation.pk),
        "title": mediation.title,
        "company": mediation.company,
        "phase": mediation.phase,
        "registration_closes_at": log.iso(mediation.registration_closes_at) if mediation.registration_closes_at else None,
        "closes_at": log.iso(mediation.closes_at),
        "members_count": mediation.members_count,
    }


@api()
def mediation_list(request):
    return [_mediation_item(m) for m in services.mediations_listed()]


@api()
def mediation_detail(request, mediation_id):
    mediation = services.mediation_get_public(mediation_id)
    item = _mediation_item(mediation)
    item.update(
        description=mediation.description,
        objective=mediation.objective,
        threshold=mediation.threshold,
        plenary_room_id=str(services.plenary_room(mediation).pk),
        registration={
            "open": services.registration_is_open(mediation),
            "fields": registrations.fields_public(mediation),
            "documents_min": mediation.registration_documents_min,
            "documents_max": settings.PALABRE_REGISTRATION_MAX_DOCUMENTS,
            "document_max_bytes": settings.PALABRE_DOCUMENT_MAX_BYTES,
            "document_types": [content_type for _magic, content_type, _ext in registrations.MAGIC],
        },
    )
    member = selectors.membership_of(request.user, mediation.pk)
    if member is not None:
        item["my_role"] = member.role
        item["my_status"] = member.status
    return item


def _check_upload_length(request) -> None:
    """Refuses a body too large to hold a request's documents, before reading its files.
    (The files of a larger body were skipped as it was parsed: FILE_UPLOAD_HANDLERS keeps
    them in memory only up to that size.)"""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.PALABRE_UPLOAD_MAX_REQUEST_BYTES:
        raise ActionError(
            Code.TOO_LARGE,
            _("A request carries at most %(n)d documents of %(mb)d MB.")
            % {"n": settings.PALABRE_UPLOAD_MAX_FILES, "mb": settings.PALABRE_DOCUMENT_MAX_BYTES // (1024 * 1024)},
        )


def _uploaded(request, field: str) -> list[tuple[str, bytes]]:
    unexpected = set(request.FILES) - {field}
    if unexpected:
        raise ActionError(Code.BAD_REQUEST, _("Files go in the '%(field)s' field.") % {"field": field})
    files = request.FILES.getlist(field)
    if len(files) > settings.PALABRE_UPLOAD_MAX_FILES:
        raise ActionError(
            Code.BAD_REQUEST,
            _("A request carries at most %(n)d documents: send more one by one.") % {"n": settings.PALABRE_UPLOAD_MAX_FILES},
        )
    return [(f.name, f.read()) for f in files]


def _check_rate(request, *, group: str, rate: str) -> None:
    """Per user, across processes (the default cache: Redis in production): past ``rate``
    a 429 ``rate_limited`` with ``retry_after_ms``, before the body is read. Counted
    whatever the answer: a refused upload costs the server as much as an accepted one.
    A cache that fails lets the request through: the limit guards against abuse, no rule
    of the mediation depends on it."""
    try:
        usage = ratelimit.get_usage(request, group=group, key="user", rate=rate, increment=True)
    except Exception:  # noqa: BLE001 - e.g. Redis down: logged, not a 500
        logger.warning("rate limit %s: the cache failed; request let through", group, exc_info=True)
        return
    if usage and usage["should_limit"]:
        retry_after_ms = max(usage["time_left"], 1) * 1000
        minutes = -(-retry_after_ms // 60_000)
        raise ActionError(
            Code.RATE_LIMITED,
            ngettext(
                "Too many uploads: try again in %(minutes)d minute.",
                "Too many uploads: try again in %(minutes)d minutes.",
                minutes,
            )
            % {"minutes": minutes},
            status=429,
            retry_after_ms=retry_after_ms,
        )


@api(methods=("POST",), login_required=True)
def mediation_register(request, mediation_id):
    """JSON ``{"answers": {...}}`` (an empty body when the mediation asks nothing), or
    multipart: ``answers`` as a JSON string, the files in ``documents``."""
    _check_rate(request, group="palabre.register", rate=settings.PALABRE_REGISTER_RATE)
    _check_upload_length(request)
    documents = []
    if request.content_type == "multipart/form-data":
        try:
            answers = json.loads(request.POST.get("answers") or "null")
        except ValueError:
            # Refused by the service, after its 409 and 410: any non-object is.
            answers = request.POST["answers"]
        documents = _uploaded(request, "documents")
    else:
        answers = json_body(request).get("answers") if request.body.strip() else None
    member = services.mediation_register(
        user=request.user, mediation_id=mediation_id, answers=answers, documents=documents
    )
    return {"status": member.status, "member_id": str(member.pk)}, 201


@api(login_required=True)
def my_registration(request, mediation_id):
    return registrations.registration_of(user=request.user, mediation_id=int(mediation_id))


@api(methods=("POST",), login_required=True)
def registration_document_add(request, mediation_id):
    _check_rate(request, group="palabre.document", rate=settings.PALABRE_DOCUMENT_UPLOAD_RATE)
    _check_upload_length(request)
    files = _uploaded(request, "file") if request.content_type == "multipart/form-data" else []
    if len(files) != 1:
        raise ActionError(Code.BAD_REQUEST, _("Send one file, as multipart form data, in the 'file' field."))
    name, content = files[0]
    document = registrations.document_add(user=request.user, mediation_id=int(mediation_id), name=name, content=content)
    return {
        "id": str(document.pk),
        "name": registrations.clean_file_name(name),
        "content_type": document.content_type,
        "size": document.size,
        "uploaded_at": log.iso(document.uploaded_at),
        "url": f"/api/v1/documents/{document.pk}",
    }, 201


@allow("GET", "HEAD")
def document_download(request, document_id):
    """The decrypted bytes, as an attachment, for the consumer who sent it and the
    mediators; JSON errors like every API path."""
    if not request.user.is_authenticated:
        return error_response("not_authenticated", _("Log in first."), 401)
    if not ID.fullmatch(document_id):
        return error_response(Code.NOT_FOUND, _("Not found."), 404)
    try:
        name, content_type, content = registrations.document_read(user=request.user, document_id=int(document_id))
    except ActionError as error:
        return error_response(error.code, error.message, error.http_status)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, name)
    response["Cache-Control"] = "private, no-store"
    return response


@api(login_required=True)
def registration_queue(request, mediation_id):
    selectors.check_mediator(request.user, mediation_id)
    status = request.GET.get("status", "pending")
    if status not in ("pending", "admitted", "refused"):
        raise ActionError(Code.BAD_REQUEST, _("'status' is pending, admitted or refused."))
    after = query_int(request, "after", default=0)
    limit = query_int(request, "limit", default=50, minimum=1, maximum=200)
    rows, next_after = registrations.registrations_page(mediation_id=int(mediation_id), status=status, after=after, limit=limit)
    return {"registrations": rows, "next": next_after}


@api(methods=("POST",), login_required=True)
def registrations_decide(request, mediation_id):
    mediator = selectors.check_mediator(request.user, mediation_id)
    decisions = registrations.check_decisions(mediator=mediator, decisions=json_body(request).get("decisions"))
    return {"decisions": registrations.registrations_decide(mediator=mediator, decisions=decisions)}


@api(methods=("GET", "POST"), login_required=True)
def my_notices(request, mediation_id):
    """``{"enabled": bool, "language": "fr" | "en"}``: POST either or both to change them."""
    body = json_body(request) if request.method == "POST" else {}
    enabled = body.get("enabled")
    if "enabled" in body and not isinstance(enabled, bool):
        raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' must be true or false.") % {"name": "enabled"})
    language = body.get("language")
    if "language" in body and not isinstance(language, str):
        raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' must be a string.") % {"name": "language"})
    member = registrations.notices_set(user=request.user, mediation_id=int(mediation_id), enabled=enabled, language=language)
    return registrations.notices_public(member)


@api(login_required=True)
def room_events(request, room_id):
    found = services.room_membership(user=request.user, room_id=room_id)
    if found is None:
        raise ActionError(Code.FORBIDDEN, _("You are not a member of this room."))
    room, _member = found
    after = query_int(request, "after_seq", default=0)
    limit = query_int(request, "limit", default=100, minimum=1, maximum=1000)
    try:
        events, last_seq = services.events_page(room=room, after_seq=after, limit=limit)
    except CryptoError as error:
        # The room's key does not unwrap: its master key is missing from the ring or is
        # not the one it was wrapped with. A configuration to fix, not data lost: "try
        # again", rather than every message shown as gone (rooms.log.room_data_key).
        logger.error("room %s: its data key does not unwrap: %s", room.pk, error)
        raise ActionError(
            Code.UNAVAILABLE, _("This room's messages cannot be read right now: try again later.")
        ) from None
    return {"events": events, "last_seq": last_seq}


@api(login_required=True)
def mediation_members(request, mediation_id):
    selectors.check_mediator(request.user, mediation_id)
    status = request.GET.get("status") or None
    if status not in (None, "admitted", "pending"):
        raise ActionError(Code.BAD_REQUEST, _("'status' is admitted or pending."))
    q = request.GET.get("q", "")
    if len(q) > 200:
        raise ActionError(Code.BAD_REQUEST, _("'q' is too long."))
    after = query_int(request, "after", default=0)
    limit = query_int(request, "limit", default=100, minimum=1, maximum=1000)
    members, next_after = selectors.members_page(mediation_id=int(mediation_id), q=q, status=status, after=after, limit=limit)
    return {"members": members, "next": next_after}


@api(login_required=True)
def mediation_rooms(request, mediation_id):
    return selectors.rooms_of(request.user, mediation_id)


@api(methods=("POST",), login_required=True)
def mediation_advance(request, mediation_id):
    """``{"phase": "registration" | "dialogue" | "closed"}``, the phase after the current one."""
    mediator = selectors.check_mediator(request.user, mediation_id)
    phase = json_body(request).get("phase")
    mediation = services.check_mediation_advance(mediator=mediator, phase=phase)
    frame = services.mediation_advance(mediation=mediation, phase=phase)
    if frame is None:
        raise ActionError("conflict", _("The mediation has just moved to another phase."), status=409)
    return {"phase": phase, "seq": frame["seq"]}


@allow("GET", "HEAD")
def agreement_record(request, ballot_id):
    """The PDF record of an accepted ballot, for every admitted member of its mediation."""
    if not request.user.is_authenticated:
        return error_response("not_authenticated", _("Log in first."), 401)
    if not ID.fullmatch(ballot_id):
        return error_response(Code.NOT_FOUND, _("Not found."), 404)
    try:
        pdf, made = record.agreement_record_read(user=request.user, ballot_id=ballot_id)
    except ActionError as error:
        return error_response(error.code, error.message, error.http_status)
    response = HttpResponse(pdf, content_type=record.CONTENT_TYPE)
    response["Content-Disposition"] = content_disposition_header(False, f"palabre-accord-{ballot_id}.pdf")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-SHA256"] = made.sha256
    return response
