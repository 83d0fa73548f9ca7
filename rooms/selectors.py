"""Reads of mediations, members and rooms, with who may read them."""

from __future__ import annotations

from django.db.models import CharField, Q, Value
from django.db.models.functions import Concat
from django.utils.translation import gettext as _

from rooms.errors import ActionError
from rooms.frames import Code
from rooms.models import Mediation, Membership, MemberStatus, Role, Room, RoomKind


def membership_of(user, mediation_id) -> Membership | None:
    if user is None or not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, mediation_id=mediation_id).first()


def check_mediator(user, mediation_id) -> Membership:
    try:
        mediation_id = int(mediation_id)
    except (TypeError, ValueError):
        raise ActionError(Code.NOT_FOUND, _("No such mediation.")) from None
    if not Mediation.objects.filter(pk=mediation_id).exists():
        raise ActionError(Code.NOT_FOUND, _("No such mediation."))
    member = membership_of(user, mediation_id)
    if member is None or member.role != Role.MEDIATOR or member.status != MemberStatus.ADMITTED:
        raise ActionError(Code.FORBIDDEN, _("Only the mediator may do this."))
    return member


def check_admitted(user, mediation_id) -> Membership:
    try:
        mediation_id = int(mediation_id)
    except (TypeError, ValueError):
        raise ActionError(Code.NOT_FOUND, _("No such mediation.")) from None
    if not Mediation.objects.filter(pk=mediation_id).exists():
        raise ActionError(Code.NOT_FOUND, _("No such mediation."))
    member = membership_of(user, mediation_id)
    if member is None or member.status != MemberStatus.ADMITTED:
        raise ActionError(Code.FORBIDDEN, _("You are not a member of this mediation."))
    return member


def members_page(*, mediation_id: int, q: str, status: str | None, after: int, limit: int):
    members = Membership.objects.filter(mediation_id=mediation_id, pk__gt=after).select_related("user")
    if status:
        members = members.filter(status=status)
    if q:
        # The display name is "first last": search it whole, so "ire Dup" finds Claire Dupont.
        members = members.annotate(
            full_name=Concat("user__first_name", Value(" "), "user__last_name", output_field=CharField())
        ).filter(Q(user__username__icontains=q) | Q(full_name__icontains=q))
    page = list(members.order_by("pk")[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    rows = [
        {
            **m.public(),
            "status": m.status,
            "muted": m.is_muted(),
            "muted_until": m.muted_until.isoformat() if m.is_muted() and m.muted_until else None,
        }
        for m in page
    ]
    return rows, (str(page[-1].pk) if has_more else None)


def rooms_of(user, mediation_id) -> list[dict]:
    member = check_admitted(user, mediation_id)
    rooms = Room.objects.filter(mediation_id=member.mediation_id)
    if member.role != Role.MEDIATOR:
        rooms = rooms.filter(Q(kind=RoomKind.PLENARY) | Q(caucus_member=member))
    ordered = sorted(rooms, key=lambda r: (r.kind != RoomKind.PLENARY, r.pk))
    return [{"id": str(r.pk), "kind": r.kind, "title": r.title} for r in ordered]
