"""HTTP API of mediations and rooms (PROTOCOL.md). Each view reads its input, calls a
selector or service, and shapes the answer; authorisation lives in those functions."""

import logging

from django.utils.translation import gettext as _

from crypto.errors import CryptoError
from project.api import api, query_int
from rooms import log, selectors, services
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
    )
    member = selectors.membership_of(request.user, mediation.pk)
    if member is not None:
        item["my_role"] = member.role
        item["my_status"] = member.status
    return item


@api(methods=("POST",), login_required=True)
def mediation_register(request, mediation_id):
    member = services.mediation_register(user=request.user, mediation_id=mediation_id)
    return {"status": member.status, "member_id": str(member.pk)}, 201


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
