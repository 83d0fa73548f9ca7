"""Business rules of rooms and mediations, one function per action.

Each write is ``<entity>_<action>(*, ...)``: it checks the actor's right (the ``check_*``
step, the one place for that rule), writes the log inside ``transaction.atomic``, and
emits its broadcast on commit. Consumers, views and commands all call these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module
from types import SimpleNamespace
from typing import NamedTuple

from django.conf import settings
from django.contrib import auth
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from project.auth import users_read_together
from rooms import broadcast, frames, log, registrations, rows
from rooms.errors import ActionError, speaking
from rooms.frames import Code
from rooms.models import (
    Event,
    Mediation,
    Membership,
    MemberStatus,
    Outcome,
    Phase,
    Role,
    Room,
    RoomKind,
)

OPEN_PHASES = (Phase.REGISTRATION, Phase.DIALOGUE)


# --- reading who may be where -------------------------------------------------------

# The rows every handshake and every live action reads (rooms.rows: SQL built once).
_MEMBERS_WITH_USER = rows.ByPk(Membership, "user")
_ROOMS_WITH_MEDIATION = rows.ByPk(Room, "mediation")
# Chat, the busiest action, reads only what its check and its frame use: the other
# columns' conversions and model fields were a fifth of its database thread's CPU
# (py-spy, 100 rooms x 10). The check rule is the same (``check_loaded_actor``).
_CHAT_MEMBERS = rows.ByPk(
    Membership,
    "user",
    only=("mediation", "role", "status", "muted", "muted_until"),
    related_only=("username", "first_name", "last_name"),
)
_CHAT_ROOMS = rows.ByPk(
    Room, "mediation", only=("kind", "caucus_member", "moderated"), related_only=("phase", "closes_at", "closed_at")
)


def room_membership(*, user, room_id) -> tuple[Room, Membership] | None:
    """The room and the caller's membership if the caller may enter it, else None.
    Plenary: any admitted member. Caucus: the mediation's mediators and the one member."""
    return room_memberships([(user, room_id)])[0]


def room_memberships(asked: list[tuple]) -> list[tuple[Room, Membership] | None]:
    """``room_membership`` of each (user, room id), in two queries for them all."""
    users = [user for user, _ in asked]
    members = _MEMBERS_WITH_USER.where("user_id", rows.ids(user.pk for user in users if _signed_in(user)))
    return _entries(users, [room_id for _, room_id in asked], members)


def room_entries(handshakes: list[tuple[str | None, str]]) -> list[tuple[Room, Membership] | None]:
    """Sockets' handshakes, each (session key, room id), in one database trip for them
    all (rooms.batcher: a reconnect storm's handshakes share their hop and their
    queries): each session (Django's configured ``SessionStore``), its user checked by
    Django's own ``auth.get_user`` (session hash included), then the room and the
    membership it may enter; None where the socket may not enter. Three queries: the
    sessions, the memberships of their users (each with its user's row, which
    ``get_user`` takes from there), the rooms; and a fourth for the users who have no
    membership at all, should any session name one."""
    keys = [key for key, _ in handshakes]
    sessions = import_module(settings.SESSION_ENGINE).SessionStore.load_many(keys)  # project.sessions
    user_ids = _session_user_ids(sessions)
    members = _MEMBERS_WITH_USER.where("user_id", rows.ids(user_ids))
    with users_read_together(user_ids, {member.user_id: member.user for member in members}):
        users = [_session_user(session) if key else None for key, session in zip(keys, sessions, strict=True)]
    return _entries(users, [room_id for _, room_id in handshakes], members)


def _entries(users: list, room_ids: list, members: list[Membership]) -> list[tuple[Room, Membership] | None]:
    """The (room, membership) each user (None or anonymous: none) may enter of the room
    named, given every membership of those users."""
    users = [user if _signed_in(user) else None for user in users]
    room_pks = []
    for user, room_id in zip(users, room_ids, strict=True):
        try:
            room_pks.append(int(room_id) if user is not None else None)
        except (ValueError, TypeError):
            room_pks.append(None)
    rooms = _ROOMS_WITH_MEDIATION.get({pk for pk in room_pks if pk is not None})
    # A user has one membership per mediation, and a few mediations.
    by_mediation = {(member.user_id, member.mediation_id): member for member in members}
    found = []
    for user, room_pk in zip(users, room_pks, strict=True):
        room = rooms.get(room_pk) if room_pk is not None else None
        member = by_mediation.get((user.pk, room.mediation_id)) if room is not None else None
        found.append((room, member) if member is not None and may_enter(member, room) else None)
    return found


def _signed_in(user) -> bool:
    return user is not None and user.is_authenticated


def _session_user(session):
    """Django's ``auth.get_user``; None for a session naming no valid user id, which it
    lets fail: one such session must not fail every handshake read with it."""
    try:
        return auth.get_user(SimpleNamespace(session=session))
    except ValidationError:
        return None


def _session_user_ids(sessions) -> set:
    """The user ids the sessions name, read as ``auth.get_user`` reads them."""
    ids = set()
    for session in sessions:
        try:
            ids.add(auth._get_user_session_key(SimpleNamespace(session=session)))
        except (KeyError, ValidationError):
            continue
    return ids


def may_enter(member: Membership, room: Room) -> bool:
    if member.status != MemberStatus.ADMITTED:
        return False
    if room.kind == RoomKind.PLENARY:
        return True
    return member.role == Role.MEDIATOR or member.pk == room.caucus_member_id


# A reconnect storm of a 150,000-member room would otherwise COUNT 150,000 memberships
# at every handshake: the welcome and room.counts read a count at most this old.
MEMBERS_COUNT_TTL_S = 2.0
_members_counts: dict[str, tuple[float, int]] = {}


_COUNT_ADMITTED = (
    f"SELECT COUNT(*) FROM {Membership._meta.db_table} "
    f"WHERE {Membership._meta.get_field('mediation').column} = %s AND {Membership._meta.get_field('status').column} = %s"
)


def members_count_recent(mediation_id) -> int:
    now = time.monotonic()
    cached = _members_counts.get(str(mediation_id))
    if cached is not None and now - cached[0] < MEMBERS_COUNT_TTL_S:
        return cached[1]
    # Asked for each room at every presence heartbeat: SQL written once, not built by
    # the ORM each time (rooms.rows says why).
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_ADMITTED, [int(mediation_id), MemberStatus.ADMITTED])
        (count,) = cursor.fetchone()
    _members_counts[str(mediation_id)] = (now, count)
    return count


def room_members_count(room: Room) -> int:
    return members_count_recent(room.mediation_id) if room.kind == RoomKind.PLENARY else 2


def room_public(room: Room) -> dict:
    mediation = room.mediation
    return {
        "id": str(room.pk),
        "kind": room.kind,
        "mediation_id": str(mediation.pk),
        "title": room.title,
        "phase": mediation.phase,
        "closes_at": log.iso(mediation.closes_at),
        "moderated": room.moderated,
    }


def welcome(room: Room, member: Membership) -> dict:
    """A socket's first frame: the room as read, with its ``last_seq``, and the member."""
    return {
        "type": frames.WELCOME,
        "room": room_public(room),
        "me": member.public(),
        "last_seq": room.last_seq,
        "members_count": room_members_count(room),
    }


def room_entries_welcomed(handshakes: list[tuple[str | None, str]]) -> list[tuple[Room, Membership, dict] | None]:
    """``room_entries``, each with its welcome from that same read: the handshake's one
    trip when the socket listened to the room before it (``rooms.consumers``)."""
    return [found and (*found, welcome(*found)) for found in room_entries(handshakes)]


def welcome_frames(joined: list[tuple[Room, Membership]]) -> list[dict]:
    """The welcome of each (room, member), in one query for them all. Read after the
    hub joined the room (so an event committed after this read is sure to arrive live):
    the room as it is now, not as the handshake read it."""
    rooms = _ROOMS_WITH_MEDIATION.get({room.pk for room, _ in joined})
    return [welcome(rooms[room.pk], member) for room, member in joined]


def events_page(*, room: Room, after_seq: int, limit: int) -> tuple[list[dict], int]:
    room.refresh_from_db(fields=["last_seq", "wrapped_key", "master_key_id"])
    return log.events_after(room, after_seq, limit), room.last_seq


# --- the check step shared by every live action ----------------------------------------


@dataclass
class Actor:
    """A fresh, locked-free view of who acts where, loaded at the start of each action."""

    member: Membership
    room: Room

    @property
    def mediation(self) -> Mediation:
        return self.room.mediation


def check_actor(*, member_id, room_id, roles: tuple[str, ...] | None = None) -> Actor:
    """Reloads the member and the room (mute, moderation and deadlines change under a
    live connection), and refuses when the room is closed or the role may not act."""
    return check_loaded_actor(**actor_rows(member_id=member_id, room_id=room_id), roles=roles)


def actor_rows(*, member_id, room_id) -> dict:
    """The member (with its user) and the room (with its mediation) an action is checked
    on, read afresh; None for either that does not exist."""
    members, rooms = actors_rows(member_ids=[member_id], room_ids=[room_id])
    return {"member": members.get(int(member_id)), "room": rooms.get(int(room_id))}


def actors_rows(*, member_ids, room_ids) -> tuple[dict[int, Membership], dict[int, Room]]:
    """``actor_rows`` for a batch: the members (with their users) and the rooms (with
    their mediations) by id, in two queries whose SQL is built once (``rooms.rows``)."""
    return _MEMBERS_WITH_USER.get(member_ids), _ROOMS_WITH_MEDIATION.get(room_ids)


def check_loaded_actor(*, member: Membership | None, room: Room | None, roles: tuple[str, ...] | None = None) -> Actor:
    """``check_actor``'s rule on rows the caller has just loaded (several at once)."""
    if member is None or room is None or not may_enter(member, room):
        raise ActionError(Code.FORBIDDEN, _("You are no longer a member of this room."))
    if roles is not None and member.role not in roles:
        raise ActionError(Code.FORBIDDEN, _("Your role may not do this."))
    check_room_open(room)
    return Actor(member=member, room=room)


def check_room_open(room: Room, now: datetime | None = None) -> None:
    mediation = room.mediation
    now = now or timezone.now()
    if mediation.phase in OPEN_PHASES and mediation.closed_at is None and now < mediation.closes_at:
        return
    if mediation.phase in OPEN_PHASES and mediation.closed_at is None:
        # A dead worker never lets a late message in: the first late action closes.
        mediation_close(mediation=mediation, reason="deadline")
    raise ActionError(Code.ROOM_CLOSED, _("This mediation is closed."))


def check_member_of_mediation(*, mediation_id, member_id) -> Membership:
    try:
        pk = int(member_id)
    except (TypeError, ValueError):
        raise ActionError(Code.NOT_FOUND, _("No such member.")) from None
    member = Membership.objects.select_related("user").filter(pk=pk, mediation_id=mediation_id).first()
    if member is None:
        raise ActionError(Code.NOT_FOUND, _("No such member."))
    return member


# --- live actions ------------------------------------------------------------------------


class Post(NamedTuple):
    member_id: str
    room_id: str
    body: str
    language: str | None = None  # the author's: a refusal is said in it


def message_post(*, member_id, room_id, body: str) -> dict:
    result = messages_post([Post(member_id, room_id, body)])[0]
    if isinstance(result, ActionError):
        raise result
    return result


def check_message_post(actor: Actor) -> None:
    if actor.member.is_muted():
        raise ActionError(Code.MUTED, _("You are muted."))
    if actor.room.moderated and actor.member.role == Role.CONSUMER:
        raise ActionError(Code.FORBIDDEN, _("The room is moderated: only the mediator and the company post."))


def messages_post(posts: list[Post]) -> list[dict | ActionError]:
    """Posts chat messages in one transaction (a group commit): the members and rooms in
    two queries, then one seq allocation for all their rooms and one INSERT
    (``log.append_to_rooms``). Each post is checked on its own: a refused one gets its
    ActionError in its place and the others go on. A busy process
    sends its messages here in batches (rooms.batcher); one message is a batch of one."""
    members = _CHAT_MEMBERS.get([p.member_id for p in posts])
    rooms = _CHAT_ROOMS.get([p.room_id for p in posts])
    results: list = [None] * len(posts)
    by_room: dict[int, list[int]] = {}
    for i, post in enumerate(posts):
        with speaking(post.language):
            try:
                actor = check_loaded_actor(member=members.get(int(post.member_id)), room=rooms.get(int(post.room_id)))
                check_message_post(actor)
            except ActionError as error:
                results[i] = error
                continue
        by_room.setdefault(actor.room.pk, []).append(i)
    entries = {
        room_id: [
            {
                "type": frames.CHAT_MESSAGE,
                "data": {"author": members[int(posts[i].member_id)].public()},
                "secret": {"body": posts[i].body},
                "author_id": int(posts[i].member_id),
            }
            for i in indexes
        ]
        for room_id, indexes in by_room.items()
    }
    with transaction.atomic():
        for room_id, room_frames in log.append_to_rooms(entries).items():
            for i, frame in zip(by_room[room_id], room_frames, strict=True):
                broadcast.to_room(room_id, frame)
                results[i] = frame
    return results


def message_redact(*, member_id, room_id, seq: int) -> dict:
    actor = check_actor(member_id=member_id, room_id=room_id, roles=(Role.MEDIATOR,))
    room = actor.room
    with transaction.atomic():
        target = (
            Event.objects.select_for_update()
            .filter(room_id=room.pk, seq=seq, type=frames.CHAT_MESSAGE)
            .first()
        )
        if target is None:
            raise ActionError(Code.NOT_FOUND, _("No message at that seq."))
        if target.redacted_at is not None:
            raise ActionError(Code.BAD_REQUEST, _("That message is already redacted."))
        # The body is deleted, not hidden: the ciphertext goes too.
        Event.objects.filter(pk=target.pk).update(redacted_at=timezone.now(), ciphertext=None)
        frame = log.append(
            room_id=room.pk,
            type=frames.MESSAGE_REDACTED,
            data={"target_seq": seq},
            author_id=actor.member.pk,
        )
        broadcast.to_room(room.pk, frame)
    return frame


def member_mute(*, member_id, room_id, target_id, until: datetime | None) -> dict:
    actor = check_actor(member_id=member_id, room_id=room_id, roles=(Role.MEDIATOR,))
    target = check_member_of_mediation(mediation_id=actor.mediation.pk, member_id=target_id)
    if target.role == Role.MEDIATOR:
        raise ActionError(Code.FORBIDDEN, _("A mediator cannot be muted."))
    if until is not None and until <= timezone.now():
        raise ActionError(Code.BAD_REQUEST, _("'until' must be in the future."))
    with transaction.atomic():
        Membership.objects.filter(pk=target.pk).update(muted=True, muted_until=until)
        frame = log.append(
            room_id=actor.room.pk,
            type=frames.MEMBER_MUTED,
            data={"member_id": str(target.pk), "until": log.iso(until) if until else None},
            author_id=actor.member.pk,
        )
        broadcast.to_room(actor.room.pk, frame)
    return frame


def member_unmute(*, member_id, room_id, target_id) -> dict:
    actor = check_actor(member_id=member_id, room_id=room_id, roles=(Role.MEDIATOR,))
    target = check_member_of_mediation(mediation_id=actor.mediation.pk, member_id=target_id)
    with transaction.atomic():
        Membership.objects.filter(pk=target.pk).update(muted=False, muted_until=None)
        frame = log.append(
            room_id=actor.room.pk,
            type=frames.MEMBER_UNMUTED,
            data={"member_id": str(target.pk)},
            author_id=actor.member.pk,
        )
        broadcast.to_room(actor.room.pk, frame)
    return frame


def room_moderate(*, member_id, room_id, moderated: bool) -> dict:
    actor = check_actor(member_id=member_id, room_id=room_id, roles=(Role.MEDIATOR,))
    if actor.room.kind != RoomKind.PLENARY:
        raise ActionError(Code.BAD_REQUEST, _("Only the plenary room can be moderated."))
    with transaction.atomic():
        Room.objects.filter(pk=actor.room.pk).update(moderated=moderated)
        frame = log.append(
            room_id=actor.room.pk,
            type=frames.ROOM_MODERATED,
            data={"moderated": moderated},
            author_id=actor.member.pk,
        )
        broadcast.to_room(actor.room.pk, frame)
    return frame


def caucus_open(*, member_id, room_id, target_id) -> tuple[Room, Membership, Membership]:
    """Creates, or returns, the caucus room of ``target`` with the mediators. Tells the
    target member on every process; the caller answers the mediator."""
    actor = check_actor(member_id=member_id, room_id=room_id, roles=(Role.MEDIATOR,))
    target = check_member_of_mediation(mediation_id=actor.mediation.pk, member_id=target_id)
    if target.role not in (Role.CONSUMER, Role.COMPANY) or target.status != MemberStatus.ADMITTED:
        raise ActionError(Code.BAD_REQUEST, _("A caucus is with one admitted consumer or company member."))
    with transaction.atomic():
        room = Room.objects.filter(mediation=actor.mediation, kind=RoomKind.CAUCUS, caucus_member=target).first()
        if room is None:
            room = room_create(
                mediation=actor.mediation,
                kind=RoomKind.CAUCUS,
                title=_("Caucus with %(name)s") % {"name": target.display_name},
                caucus_member=target,
            )
        broadcast.to_member(
            target.pk,
            {
                "type": frames.CAUCUS_OPENED,
                "room": {"id": str(room.pk), "kind": RoomKind.CAUCUS, "title": room.title},
                "with": actor.member.public(),
            },
        )
    return room, actor.member, target


def caucus_opened_frame(*, room: Room, with_member: Membership, ref) -> dict:
    return {
        "type": frames.CAUCUS_OPENED,
        "ref": ref,
        "room": {"id": str(room.pk), "kind": RoomKind.CAUCUS, "title": room.title},
        "with": with_member.public(),
    }


# --- mediations: creation, registration, closing -------------------------------------------


def room_create(*, mediation: Mediation, kind: str, title: str, caucus_member=None) -> Room:
    key_id, wrapped = log.new_wrapped_key()
    return Room.objects.create(
        mediation=mediation,
        kind=kind,
        title=title,
        caucus_member=caucus_member,
        wrapped_key=wrapped,
        master_key_id=key_id,
    )


def plenary_room(mediation: Mediation) -> Room:
    room = Room.objects.filter(mediation=mediation, kind=RoomKind.PLENARY).first()
    if room is None:
        room = room_create(mediation=mediation, kind=RoomKind.PLENARY, title=_("Plenary"))
    return room


def mediation_create(**fields) -> Mediation:
    with transaction.atomic():
        mediation = Mediation.objects.create(**fields)
        plenary_room(mediation)
    return mediation


def registration_is_open(mediation: Mediation, now: datetime | None = None) -> bool:
    """In the ``registration`` phase, and in ``dialogue`` if the mediation allows it; never
    past the registration deadline or the mediation's end."""
    now = now or timezone.now()
    if mediation.closed_at is not None or now >= mediation.closes_at:
        return False
    if mediation.registration_closes_at is not None and now >= mediation.registration_closes_at:
        return False
    return mediation.phase == Phase.REGISTRATION or (
        mediation.phase == Phase.DIALOGUE and mediation.registration_in_dialogue
    )


def mediation_register(
    *, user, mediation_id, answers: dict | None = None, documents=(), language: str | None = None
) -> Membership:
    """A logged-in user asks to join as consumer, with the answers the mediation asks for
    and supporting documents (``(name, bytes)``): admitted at once or pending, per the
    mediation's ``auto_admit``. Errors: not_found, 409 already a member, 410 closed, 400
    answers or documents missing or wrong (``rooms.registrations``)."""
    mediation = mediation_get_public(mediation_id)
    if not registration_is_open(mediation):
        raise ActionError("gone", _("Registration is closed for this mediation."), status=410)
    if Membership.objects.filter(user=user, mediation=mediation).exists():
        raise ActionError("conflict", _("You are already a member of this mediation."), status=409)
    clean = registrations.check_answers(mediation, answers)
    checked = []
    for name, content in documents:
        clean_name, content_type = registrations.check_document(name, content)
        checked.append((clean_name, content_type, content))
    if len(checked) < mediation.registration_documents_min:
        raise ActionError(
            Code.BAD_REQUEST,
            ngettext(
                "This mediation asks for at least %(n)d supporting document.",
                "This mediation asks for at least %(n)d supporting documents.",
                mediation.registration_documents_min,
            )
            % {"n": mediation.registration_documents_min},
        )
    if len(checked) > settings.PALABRE_REGISTRATION_MAX_DOCUMENTS:
        raise ActionError(
            Code.BAD_REQUEST,
            _("At most %(n)d documents per registration.") % {"n": settings.PALABRE_REGISTRATION_MAX_DOCUMENTS},
        )
    language = (language or translation.get_language() or settings.LANGUAGE_CODE)[:2]
    try:
        with transaction.atomic():
            member = Membership.objects.create(
                user=user,
                mediation=mediation,
                role=Role.CONSUMER,
                status=MemberStatus.ADMITTED if mediation.auto_admit else MemberStatus.PENDING,
                language=language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE,
            )
            registrations.registration_create(member=member, answers=clean, documents=checked)
    except IntegrityError:
        # The same user's two requests at once: the unique (user, mediation) picks one.
        raise ActionError("conflict", _("You are already a member of this mediation."), status=409) from None
    return member


def mediations_listed():
    return (
        Mediation.objects.filter(phase__in=OPEN_PHASES)
        .annotate(members_count=Count("memberships", filter=Q(memberships__status=MemberStatus.ADMITTED)))
        .order_by("closes_at", "pk")
    )


def mediation_get_public(mediation_id) -> Mediation:
    try:
        return mediations_listed().get(pk=int(mediation_id))
    except (Mediation.DoesNotExist, ValueError, TypeError):
        raise ActionError(Code.NOT_FOUND, _("No such mediation.")) from None


def mediation_close(*, mediation: Mediation, reason: str, outcome: str | None = None) -> bool:
    """Closes the mediation once (the conditional UPDATE makes concurrent closers
    harmless), logs ``mediation.phase`` ``closed`` in the plenary room, as every phase
    change is (issue 10), then ``room.closed`` in each of its rooms. Returns whether it
    closed."""
    now = timezone.now()
    with transaction.atomic():
        closed = Mediation.objects.filter(
            pk=mediation.pk, phase__in=OPEN_PHASES, closed_at__isnull=True
        ).update(
            phase=Phase.CLOSED,
            closed_at=now,
            outcome=outcome or (mediation.outcome or Outcome.EXPIRED),
        )
        if not closed:
            return False
        plenary = plenary_room(mediation)
        frame = log.append(room_id=plenary.pk, type=frames.MEDIATION_PHASE, data={"phase": Phase.CLOSED.value})
        broadcast.to_room(plenary.pk, frame)
        for room_id in Room.objects.filter(mediation=mediation).values_list("pk", flat=True):
            frame = log.append(room_id=room_id, type=frames.ROOM_CLOSED, data={"reason": reason})
            broadcast.to_room(room_id, frame)
    mediation.refresh_from_db()
    return True


def mediations_close_due(now: datetime | None = None) -> int:
    now = now or timezone.now()
    due = Mediation.objects.filter(phase__in=OPEN_PHASES, closed_at__isnull=True, closes_at__lte=now)
    return sum(mediation_close(mediation=m, reason="deadline") for m in due)


# --- phases: registration → dialogue → closed ------------------------------------------------

PHASE_BEFORE = {
    Phase.REGISTRATION: Phase.DRAFT,
    Phase.DIALOGUE: Phase.REGISTRATION,
    Phase.CLOSED: Phase.DIALOGUE,
}


def check_mediation_advance(*, mediator: Membership, phase) -> Mediation:
    """The mediator moves the mediation one phase on, never back nor over one: a second
    click on "start the dialogue" is a 409, not a second event."""
    if not isinstance(phase, str) or phase not in PHASE_BEFORE:
        raise ActionError(Code.BAD_REQUEST, _("'phase' is registration, dialogue or closed."))
    mediation = Mediation.objects.get(pk=mediator.mediation_id)
    if mediation.phase != PHASE_BEFORE[phase] or mediation.closed_at is not None:
        raise ActionError(
            "conflict",
            _("The mediation is in its %(phase)s phase: it cannot move to %(next)s.")
            % {"phase": mediation.get_phase_display(), "next": Phase(phase).label},
            status=409,
        )
    return mediation


def mediation_advance(*, mediation: Mediation, phase: str) -> dict | None:
    """Moves the mediation to ``phase`` from the phase before it, once (a conditional
    UPDATE: the mediator and the worker may race), and logs ``mediation.phase`` in the
    plenary room. Closing is ``mediation_close``, which logs it too, then ``room.closed``
    in every room. Returns the logged ``mediation.phase`` frame, or None when someone
    moved it first."""
    if phase == Phase.CLOSED:
        closed = mediation_close(mediation=mediation, reason="mediator", outcome=Outcome.NO_AGREEMENT)
        if not closed:
            return None
        closing = (
            Event.objects.filter(room=plenary_room(mediation), type=frames.MEDIATION_PHASE).order_by("-seq").first()
        )
        return log.event_frame(closing, None)
    with transaction.atomic():
        moved = Mediation.objects.filter(
            pk=mediation.pk, phase=PHASE_BEFORE[phase], closed_at__isnull=True
        ).update(phase=phase)
        if not moved:
            return None
        room = plenary_room(mediation)
        frame = log.append(room_id=room.pk, type=frames.MEDIATION_PHASE, data={"phase": phase})
        broadcast.to_room(room.pk, frame)
    mediation.refresh_from_db()
    return frame


def mediations_advance_due(now: datetime | None = None) -> int:
    """The worker's pass: registration ends at ``registration_closes_at``, the dialogue goes on."""
    now = now or timezone.now()
    due = Mediation.objects.filter(
        phase=Phase.REGISTRATION, closed_at__isnull=True, registration_closes_at__lte=now
    )
    return sum(mediation_advance(mediation=m, phase=Phase.DIALOGUE) is not None for m in due)


def sync_room(*, conn) -> Room:
    """The room a live connection syncs, if its member may still enter it."""
    room = Room.objects.select_related("mediation").get(pk=conn.room_id)
    member = Membership.objects.filter(pk=conn.member_id).first()
    if member is None or not may_enter(member, room):
        raise ActionError(Code.FORBIDDEN, _("You are no longer a member of this room."))
    return room


# --- retention: crypto-shredding ------------------------------------------------------------


def check_shreddable(*, mediation: Mediation, force: bool) -> None:
    """Only a closed mediation is shredded, unless forced: a shred can't be undone."""
    if mediation.shredded_at is None and mediation.closed_at is None and not force:
        raise ActionError(
            "conflict",
            _("This mediation is not closed (phase: %(phase)s): shredding it would destroy the messages of a live mediation.")
            % {"phase": mediation.phase},
            status=409,
        )


def mediation_shred(*, mediation: Mediation, force: bool = False) -> bool:
    """Destroys the data keys of every room of a mediation (closed, unless ``force``,
    which closes it first so its members see ``room.closed``). Its events stay; their
    free text becomes unreadable. Seals stay verifiable (they hold hashes, not text).
    Returns whether it shredded (False: already shredded).

    Only wrapped keys were ever stored, so once the master key that wrapped them at the
    time of a backup is retired (``rotate_master_key``, then drop it from the ring), that
    backup's copy of a shredded room is unreadable too."""
    mediation.refresh_from_db()
    check_shreddable(mediation=mediation, force=force)
    with transaction.atomic():
        if mediation.closed_at is None:
            mediation_close(mediation=mediation, reason="shredded")
        done = Mediation.objects.filter(pk=mediation.pk, shredded_at__isnull=True).update(
            phase=Phase.SHREDDED, shredded_at=timezone.now()
        )
        if not done:
            return False
        Room.objects.filter(mediation_id=mediation.pk).update(wrapped_key=None, master_key_id="")
    mediation.refresh_from_db()
    return True


def mediations_shred_due(now: datetime | None = None) -> int:
    now = now or timezone.now()
    count = 0
    for mediation in Mediation.objects.filter(phase=Phase.CLOSED, shredded_at__isnull=True, closed_at__isnull=False):
        if mediation.closed_at + timedelta(days=mediation.retention_days) <= now:
            count += mediation_shred(mediation=mediation)
    return count
