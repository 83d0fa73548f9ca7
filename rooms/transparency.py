"""The mediation's page for the consumer (issue 10, item 5): its objective, its dates, the
vote rule in plain words, and every offer and result so far. Server-rendered (a Django
template, no JavaScript), so it reads the same in a mail client's browser, and apart
from the browser client's single page (static/, rooms/templates/rooms/app.html).

Who sees what: the mediation's facts and rule, anyone, once it is open (members only
while it is a draft or once shredded); the offers, the turnout and the results, its
admitted members only, as in the room.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from rooms import registrations, services
from rooms.errors import ActionError
from rooms.models import AgreementRecord, Mediation, MemberStatus, Phase, Role
from rooms.record import euros, percent, percent_number, record_url
from rooms.selectors import membership_of

PUBLIC_PHASES = (Phase.REGISTRATION, Phase.DIALOGUE, Phase.CLOSED)


def chunks(hex_digest: str, size: int = 16) -> list[str]:
    """A digest in pieces the page may wrap between (64 characters overflow a phone)."""
    return [hex_digest[i : i + size] for i in range(0, len(hex_digest), size)]


def offers_so_far(mediation: Mediation) -> list[dict]:
    """Every offer, oldest first, with its ballot: turnout while open, counts and seal
    once sealed, and the record of agreement of an accepted one."""
    from ballots import rule
    from ballots.models import Offer
    from ballots.selectors import offer_text, turnout

    offers = list(Offer.objects.filter(mediation=mediation).select_related("ballot").order_by("submitted_at", "pk"))
    records = {
        r.ballot_id: r
        for r in AgreementRecord.objects.filter(mediation=mediation).only("ballot_id", "sha256", "seq")
    }
    rows = []
    for offer in offers:
        text = offer_text(offer)
        ballot = getattr(offer, "ballot", None)
        row = {
            "offer": offer,
            "title": text["title"] if text else None,
            "terms": text["terms"] if text else None,
            "amount": euros(offer.amount_cents) if offer.amount_cents is not None else None,
            "ballot": ballot,
        }
        if ballot is not None:
            row["needed"] = rule.needed(ballot.eligible, ballot.threshold_bp)
            row["threshold"] = percent(ballot.threshold_bp)
            row["voted"] = turnout(ballot)
            if ballot.sealed_at is not None:
                row["did_not_vote"] = ballot.eligible - (ballot.accept or 0) - (ballot.refuse or 0)
                row["merkle_root"] = chunks(ballot.merkle_root)
                record = records.get(ballot.pk)
                if record is not None or ballot.outcome == "accepted":
                    row["record"] = {"url": record_url(ballot.pk), "sha256": chunks(record.sha256) if record else None}
        rows.append(row)
    return rows


def page_context(*, user, mediation_id: int) -> dict:
    mediation = Mediation.objects.filter(pk=mediation_id).first()
    member = membership_of(user, mediation_id) if mediation else None
    if mediation is None or (mediation.phase not in PUBLIC_PHASES and member is None):
        raise Http404
    from ballots import rule

    consumers = mediation.memberships.filter(role=Role.CONSUMER, status=MemberStatus.ADMITTED).count()
    is_admitted = member is not None and member.status == MemberStatus.ADMITTED
    context = {
        "mediation": mediation,
        "member": member,
        "is_admitted": is_admitted,
        "consumers_count": consumers,
        "threshold": percent(mediation.threshold_bp),
        "threshold_number": percent_number(mediation.threshold_bp),
        "needed_today": rule.needed(consumers, mediation.threshold_bp),
        "registration_open": services.registration_is_open(mediation),
        "offers": offers_so_far(mediation) if is_admitted else None,
    }
    if member is not None and member.role == Role.CONSUMER and hasattr(member, "registration"):
        context["reason"] = registrations.decision_reason(member)
    return context


@require_http_methods(["GET", "HEAD", "POST"])
def mediation_page(request, mediation_id: int):
    """GET: the page. POST (a member): their email notices, on or off, and their language."""
    if request.method == "POST":
        enabled = request.POST.get("notices") == "on"
        language = request.POST.get("language") or None
        try:
            registrations.notices_set(user=request.user, mediation_id=mediation_id, enabled=enabled, language=language)
        except ActionError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Your notice settings are saved."))
        return redirect("mediation-about", mediation_id=mediation_id)
    return render(request, "rooms/mediation.html", page_context(user=request.user, mediation_id=mediation_id))
