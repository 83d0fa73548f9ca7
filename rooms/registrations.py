"""Registration and admission (issue 10, item 1): what a consumer sends to join a
mediation, their supporting documents, and the mediator's decisions.

Free text (the answers, the reason of a decision, a document's name and bytes) is
AES-256-GCM at rest under the key of the mediation's plenary room, like the room's
messages, so shredding the mediation shreds it too. Its associated data names the
mediation, the membership and the part, so a ciphertext can't be moved to another
consumer, another document or another field (``_aad``).

``rooms.services.mediation_register`` calls ``check_answers``, ``check_document`` and
``registration_create``; the views call the rest.
"""

from __future__ import annotations

import base64
import json
import os
import unicodedata

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from crypto import aead
from crypto.errors import TamperedError
from rooms import log, validate
from rooms.errors import ActionError
from rooms.frames import Code
from rooms.models import (
    Mediation,
    Membership,
    MemberStatus,
    Notice,
    NoticeKind,
    Registration,
    RegistrationDocument,
    Role,
    Room,
    RoomKind,
)

# What a supporting document may be, told by its first bytes: a name says nothing.
MAGIC = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)
DEFAULT_TEXT_CHARS = {"text": 200, "textarea": 4000}
REASON_MAX_CHARS = 2000
NAME_MAX_CHARS = 200
DECISIONS_MAX = 1000
ADMIT, REFUSE = "admit", "refuse"


# --- the sealed parts --------------------------------------------------------------------------


def _aad(*, mediation_id, membership_id, part: str) -> bytes:
    # Its own label: these bytes can never equal the log's (["palabre.v1", room, seq, type]).
    return json.dumps(
        ["palabre.registration.v1", str(mediation_id), str(membership_id), part], separators=(",", ":")
    ).encode()


def _plenary_key(mediation_id) -> bytes | None:
    """The plenary room's data key, None once shredded."""
    room = Room.objects.only("wrapped_key", "master_key_id").get(mediation_id=mediation_id, kind=RoomKind.PLENARY)
    return log.room_data_key(room)


def _seal(key: bytes, text: str, *, member: Membership, part: str) -> bytes:
    return aead.encrypt(key, text, aad=_aad(mediation_id=member.mediation_id, membership_id=member.pk, part=part))


def _open(key: bytes | None, blob, *, member: Membership, part: str) -> str | None:
    """The plaintext; None when there is nothing, the key is shredded, or the blob fails
    authentication (never unauthenticated bytes)."""
    if blob is None or key is None:
        return None
    try:
        return aead.decrypt(
            key, bytes(blob), aad=_aad(mediation_id=member.mediation_id, membership_id=member.pk, part=part)
        )
    except TamperedError:
        return None


def _writable_key(mediation_id) -> bytes:
    key = _plenary_key(mediation_id)
    if key is None:
        raise ActionError(Code.ROOM_CLOSED, _("This mediation is closed."))
    return key


# --- checks ------------------------------------------------------------------------------------


def field_label(field: dict, language: str | None = None) -> str:
    label = field.get("label") or field["name"]
    if isinstance(label, dict):
        language = (language or get_language() or settings.LANGUAGE_CODE)[:2]
        return label.get(language) or label.get(settings.LANGUAGE_CODE) or next(iter(label.values()), field["name"])
    return label


def fields_public(mediation: Mediation) -> list[dict]:
    """What the mediation asks, labels in the caller's language."""
    return [
        {
            "name": f["name"],
            "label": field_label(f),
            "type": f.get("type", "text"),
            "required": bool(f.get("required", False)),
            "max_length": f.get("max_length") or DEFAULT_TEXT_CHARS.get(f.get("type", "text")),
        }
        for f in mediation.registration_fields
    ]


def check_answers(mediation: Mediation, answers) -> dict:
    """The answers, checked against what the mediation asks; unknown fields refused.
    Multipart forms send numbers as text: digits are read as integers."""
    if answers is None:
        answers = {}
    if not isinstance(answers, dict):
        raise ActionError(Code.BAD_REQUEST, _("'answers' must be a JSON object."))
    fields = {f["name"]: f for f in mediation.registration_fields}
    unknown = sorted(set(answers) - set(fields))
    if unknown:
        raise ActionError(Code.BAD_REQUEST, _("This mediation does not ask for '%(name)s'.") % {"name": unknown[0]})
    clean = {}
    for name, field in fields.items():
        kind = field.get("type", "text")
        value = answers.get(name)
        if isinstance(value, str) and kind in ("integer", "amount"):
            text = value.strip()
            value = int(text) if text.lstrip("-").isascii() and text.lstrip("-").isdigit() and len(text) < 17 else value
            value = None if text == "" else value
        required = bool(field.get("required", False))
        if kind in ("text", "textarea"):
            max_len = field.get("max_length") or DEFAULT_TEXT_CHARS[kind]
            if value == "" or (isinstance(value, str) and not value.strip()):
                value = None
            value = validate.string({name: value}, name, max_len=max_len, required=required)
            if value is not None:
                check_text(value, name)
        else:
            minimum = 0 if kind == "amount" else -validate.MAX_INT
            value = validate.integer({name: value}, name, min_value=minimum, required=required)
        if value is not None:
            clean[name] = value
    return clean


def check_text(value: str, name: str) -> str:
    """Text that can be sealed: no NUL (PostgreSQL refuses it), no lone surrogate (JSON
    lets a client send one; UTF-8 cannot hold it)."""
    if "\x00" in value:
        raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' holds a NUL character.") % {"name": name})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' is not valid text.") % {"name": name}) from None
    return value


def check_document(name, content: bytes) -> tuple[str, str]:
    """A supporting document's clean name and its type, read from its first bytes.
    Refused: empty (400 ``empty_file``), too big (413 ``too_large``), anything but PDF,
    PNG or JPEG (415 ``unsupported_type``), whatever its name says."""
    clean_name = clean_file_name(name)
    if not content:
        raise ActionError("empty_file", _("The file “%(name)s” is empty.") % {"name": clean_name}, status=400)
    limit = settings.PALABRE_DOCUMENT_MAX_BYTES
    if len(content) > limit:
        raise ActionError(
            Code.TOO_LARGE,
            _("The file “%(name)s” is larger than %(mb)s MB.") % {"name": clean_name, "mb": limit // (1024 * 1024)},
        )
    for magic, content_type, _extension in MAGIC:
        if content.startswith(magic):
            return clean_name, content_type
    raise ActionError(
        "unsupported_type",
        _("The file “%(name)s” is not a PDF, PNG or JPEG document.") % {"name": clean_name},
        status=415,
    )


def clean_file_name(name) -> str:
    """The last part of a path, without control characters, 200 characters at most."""
    name = os.path.basename(str(name or "").replace("\\", "/"))
    # Category C: control characters, and lone surrogates, which UTF-8 cannot hold.
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[-NAME_MAX_CHARS:] or _("document")


# --- writes ------------------------------------------------------------------------------------


def registration_create(*, member: Membership, answers: dict, documents: list[tuple[str, str, bytes]]) -> Registration:
    """The registration of a membership just created, with its checked documents
    (``(name, content_type, content)``). Runs inside the caller's transaction."""
    key = _writable_key(member.mediation_id)
    registration = Registration.objects.create(
        membership=member,
        answers=_seal(key, json.dumps(answers, ensure_ascii=False), member=member, part="answers"),
        decided_at=timezone.now() if member.status == MemberStatus.ADMITTED else None,
    )
    for name, content_type, content in documents:
        _document_store(key, registration=registration, member=member, name=name, content_type=content_type, content=content)
    return registration


def _document_store(key, *, registration, member, name, content_type, content) -> RegistrationDocument:
    # The id is part of the associated data, so the row exists before its ciphertext.
    document = RegistrationDocument.objects.create(
        registration=registration, content_type=content_type, size=len(content), name=b"", content=b""
    )
    part = f"document:{document.pk}"
    # crypto.aead seals text: the bytes go in as base64 (a third more at rest).
    RegistrationDocument.objects.filter(pk=document.pk).update(
        name=_seal(key, name, member=member, part=part + ":name"),
        content=_seal(key, base64.b64encode(content).decode("ascii"), member=member, part=part),
    )
    return document


def check_own_registration(*, user, mediation_id) -> Membership:
    member = (
        Membership.objects.select_related("mediation", "registration")
        .filter(user=user, mediation_id=mediation_id, role=Role.CONSUMER)
        .first()
        if user.is_authenticated
        else None
    )
    if member is None or not hasattr(member, "registration"):
        raise ActionError(Code.NOT_FOUND, _("You have not registered for this mediation."))
    return member


def document_add(*, user, mediation_id, name: str, content: bytes) -> RegistrationDocument:
    """The consumer adds a supporting document while their registration is pending."""
    member = check_own_registration(user=user, mediation_id=mediation_id)
    if member.status != MemberStatus.PENDING:
        raise ActionError("conflict", _("Your registration has been decided: documents can no longer be added."), status=409)
    if not member.mediation.is_open:
        raise ActionError(Code.ROOM_CLOSED, _("This mediation is closed."))
    clean_name, content_type = check_document(name, content)
    with transaction.atomic():
        registration = Registration.objects.select_for_update().get(pk=member.pk)
        if registration.documents.count() >= settings.PALABRE_REGISTRATION_MAX_DOCUMENTS:
            raise ActionError(
                Code.BAD_REQUEST,
                _("At most %(n)d documents per registration.") % {"n": settings.PALABRE_REGISTRATION_MAX_DOCUMENTS},
            )
        key = _writable_key(member.mediation_id)
        return _document_store(
            key, registration=registration, member=member, name=clean_name, content_type=content_type, content=content
        )


def check_decisions(*, mediator: Membership, decisions) -> list[tuple[int, str, str]]:
    """``[{"member_id", "decision": "admit" | "refuse", "reason"}]``: 1 to 1000 of them, each
    member once; a refusal says why."""
    if not isinstance(decisions, list) or not 1 <= len(decisions) <= DECISIONS_MAX:
        raise ActionError(Code.BAD_REQUEST, _("'decisions' is a list of 1 to %(n)d decisions.") % {"n": DECISIONS_MAX})
    if not mediator.mediation.is_open:
        raise ActionError(Code.ROOM_CLOSED, _("This mediation is closed."))
    out, seen = [], set()
    for item in decisions:
        if not isinstance(item, dict):
            raise ActionError(Code.BAD_REQUEST, _("Each decision is a JSON object."))
        member_id = validate.identifier(item, "member_id")
        decision = item.get("decision")
        if decision not in (ADMIT, REFUSE):
            raise ActionError(Code.BAD_REQUEST, _("'decision' is admit or refuse."), member_id=str(member_id))
        reason = item.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ActionError(Code.BAD_REQUEST, _("Field '%(name)s' must be a string.") % {"name": "reason"})
        reason = check_text((reason or "").strip(), "reason")
        if decision == REFUSE and not reason:
            raise ActionError(Code.BAD_REQUEST, _("A refusal says why: 'reason' is required."), member_id=str(member_id))
        if len(reason) > REASON_MAX_CHARS:
            raise ActionError(
                Code.BAD_REQUEST,
                _("Field '%(name)s' is longer than %(max)d characters.") % {"name": "reason", "max": REASON_MAX_CHARS},
            )
        if member_id in seen:
            raise ActionError(
                "conflict", _("Member %(id)s is decided twice.") % {"id": member_id}, status=409, member_id=str(member_id)
            )
        seen.add(member_id)
        out.append((member_id, decision, reason))
    return out


def registrations_decide(*, mediator: Membership, decisions: list[tuple[int, str, str]]) -> list[dict]:
    """Admits or refuses each consumer, all or none: a pending registration may be admitted
    or refused, a refused one admitted after all; anything else is a 409 naming the member.
    Locks the memberships (``select_for_update``) so that two mediators deciding at once
    queue, and the second sees the first's decision. Enqueues the notices (the worker
    sends them, ``rooms.notices``)."""
    now = timezone.now()
    with transaction.atomic():
        ids = [member_id for member_id, _decision, _reason in decisions]
        members = {
            m.pk: m
            for m in Membership.objects.select_for_update().filter(
                pk__in=ids, mediation_id=mediator.mediation_id, role=Role.CONSUMER
            )
        }
        for member_id, decision, _reason in decisions:
            member = members.get(member_id)
            if member is None:
                raise ActionError(Code.NOT_FOUND, _("No such consumer in this mediation: %(id)s.") % {"id": member_id}, member_id=str(member_id))
            allowed = (MemberStatus.PENDING, MemberStatus.REFUSED) if decision == ADMIT else (MemberStatus.PENDING,)
            if member.status not in allowed:
                raise ActionError(
                    "conflict",
                    _("Member %(id)s is already %(status)s.") % {"id": member_id, "status": member.get_status_display()},
                    status=409,
                    member_id=str(member_id),
                )
        key = _writable_key(mediator.mediation_id)
        existing = set(Registration.objects.filter(pk__in=ids).values_list("pk", flat=True))
        updated, created, notices = [], [], []
        for member_id, decision, reason in decisions:
            member = members[member_id]
            status = MemberStatus.ADMITTED if decision == ADMIT else MemberStatus.REFUSED
            sealed_reason = _seal(key, reason, member=member, part="reason") if reason else None
            row = Registration(membership=member, decided_at=now, decided_by=mediator, reason=sealed_reason)
            (updated if member_id in existing else created).append(row)
            member.status = status
            kind = NoticeKind.ADMITTED if decision == ADMIT else NoticeKind.REFUSED
            notices.append(Notice(membership=member, kind=kind, subject_id=0))
        Membership.objects.bulk_update(members.values(), ["status"], batch_size=500)
        Registration.objects.bulk_update(updated, ["decided_at", "decided_by", "reason"], batch_size=500)
        Registration.objects.bulk_create(created, batch_size=500)
        Notice.objects.bulk_create(notices, ignore_conflicts=True, batch_size=500)
    return [{"member_id": str(m.pk), "status": m.status} for m in (members[i] for i in ids)]


def notices_set(*, user, mediation_id, enabled: bool | None, language: str | None) -> Membership:
    member = Membership.objects.filter(user=user, mediation_id=mediation_id).first() if user.is_authenticated else None
    if member is None:
        raise ActionError(Code.FORBIDDEN, _("You are not a member of this mediation."))
    if language is not None and language not in dict(settings.LANGUAGES):
        raise ActionError(Code.BAD_REQUEST, _("'language' is one of: %(codes)s.") % {"codes": ", ".join(dict(settings.LANGUAGES))})
    changes = {}
    if enabled is not None:
        changes["notices_enabled"] = enabled
    if language is not None:
        changes["language"] = language
    if changes:
        Membership.objects.filter(pk=member.pk).update(**changes)
        member.refresh_from_db(fields=list(changes))
    return member


def notices_public(member: Membership) -> dict:
    return {"enabled": member.notices_enabled, "language": member.language}


# --- reads -------------------------------------------------------------------------------------


def _documents_public(key, member: Membership, documents) -> list[dict]:
    return [
        {
            "id": str(d.pk),
            "name": _open(key, d.name, member=member, part=f"document:{d.pk}:name"),
            "content_type": d.content_type,
            "size": d.size,
            "uploaded_at": log.iso(d.uploaded_at),
            "url": f"/api/v1/documents/{d.pk}",
        }
        for d in documents
    ]


def registration_public(key, member: Membership, documents) -> dict:
    registration = getattr(member, "registration", None)
    answers = _open(key, registration and registration.answers, member=member, part="answers")
    reason = _open(key, registration and registration.reason, member=member, part="reason")
    return {
        "member_id": str(member.pk),
        "display_name": member.display_name,
        "status": member.status,
        "submitted_at": log.iso(registration.submitted_at) if registration else None,
        "decided_at": log.iso(registration.decided_at) if registration and registration.decided_at else None,
        "answers": json.loads(answers) if answers is not None else None,
        "reason": reason,
        "documents": _documents_public(key, member, documents),
    }


def _documents_of(member_ids) -> dict[int, list[RegistrationDocument]]:
    by_member: dict[int, list[RegistrationDocument]] = {}
    # Never the bytes of a listing's documents: only what describes them.
    for d in RegistrationDocument.objects.filter(registration_id__in=member_ids).defer("content").order_by("pk"):
        by_member.setdefault(d.registration_id, []).append(d)
    return by_member


def decision_reason(member: Membership) -> str | None:
    """The mediator's reason for a decision, for the consumer's notice."""
    registration = Registration.objects.filter(pk=member.pk).only("reason").first()
    if registration is None:
        return None
    return _open(_plenary_key(member.mediation_id), registration.reason, member=member, part="reason")


def registration_of(*, user, mediation_id) -> dict:
    """The caller's own registration: status, the mediator's reason, answers, documents."""
    member = check_own_registration(user=user, mediation_id=mediation_id)
    key = _plenary_key(member.mediation_id)
    return {
        **registration_public(key, member, _documents_of([member.pk]).get(member.pk, [])),
        "notices": notices_public(member),
    }


def registrations_page(*, mediation_id: int, status: str, after: int, limit: int) -> tuple[list[dict], str | None]:
    """The mediator's queue: consumers of one status, oldest first, paged by member id."""
    members = list(
        Membership.objects.filter(mediation_id=mediation_id, role=Role.CONSUMER, status=status, pk__gt=after)
        .select_related("user", "registration")
        .order_by("pk")[: limit + 1]
    )
    has_more = len(members) > limit
    members = members[:limit]
    key = _plenary_key(mediation_id)
    documents = _documents_of([m.pk for m in members])
    rows = [registration_public(key, m, documents.get(m.pk, [])) for m in members]
    return rows, (str(members[-1].pk) if has_more else None)


def document_read(*, user, document_id) -> tuple[str, str, bytes]:
    """``(name, content_type, bytes)`` of a supporting document, for the consumer who sent
    it and the mediation's mediators; 404 for anyone else, as for a document that
    does not exist."""
    document = RegistrationDocument.objects.select_related("registration__membership").filter(pk=document_id).first()
    if document is None or not user.is_authenticated:
        raise ActionError(Code.NOT_FOUND, _("No such document."))
    owner = document.registration.membership
    allowed = owner.user_id == user.pk or Membership.objects.filter(
        user=user, mediation_id=owner.mediation_id, role=Role.MEDIATOR, status=MemberStatus.ADMITTED
    ).exists()
    if not allowed:
        raise ActionError(Code.NOT_FOUND, _("No such document."))
    key = _plenary_key(owner.mediation_id)
    part = f"document:{document.pk}"
    content = _open(key, document.content, member=owner, part=part)
    if content is None:
        raise ActionError("gone", _("This document can no longer be read."), status=410)
    name = _open(key, document.name, member=owner, part=part + ":name") or _("document")
    return name, document.content_type, base64.b64decode(content)


def extension_of(content_type: str) -> str:
    return next((ext for _magic, ctype, ext in MAGIC if ctype == content_type), "bin")
