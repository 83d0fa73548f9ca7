"""The record of agreement (issue 10, item 4): when a ballot seals ``accepted``, a PDF
states the mediation, the parties, the offer's terms, the counts, the threshold, the
seal (Merkle root, signature, key id) and how anyone verifies it.

Made once per accepted ballot, by the worker's pass (or by the first member who asks
for it, if the worker is behind), and kept: its SHA-256 is logged in the plenary room
(``agreement.record``), so the file every member downloads is the one the log names.
It holds the offer's terms, so it is encrypted at rest under the plenary room's key,
like the terms in the log, and is shredded with them; the seal stays verifiable.

The PDF is rendered reproducibly (reportlab's ``invariant``, fonts shipped with
reportlab): the same ballot gives the same bytes.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from datetime import datetime
from decimal import Decimal
from xml.sax.saxutils import escape

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from crypto import aead, signing
from crypto.errors import TamperedError
from rooms import broadcast, frames, log
from rooms.errors import ActionError
from rooms.frames import Code
from rooms.models import AgreementRecord, Membership, MemberStatus, Role, Room, RoomKind

logger = logging.getLogger("palabre.record")

CONTENT_TYPE = "application/pdf"


def record_url(ballot_id) -> str:
    return f"/api/v1/ballots/{ballot_id}/record.pdf"


def _aad(*, mediation_id, ballot_id) -> bytes:
    return json.dumps(["palabre.record.v1", str(mediation_id), str(ballot_id)], separators=(",", ":")).encode()


def _plenary(mediation_id) -> Room:
    return Room.objects.get(mediation_id=mediation_id, kind=RoomKind.PLENARY)


# --- making it ----------------------------------------------------------------------------------


def agreement_record_make(*, ballot) -> AgreementRecord | None:
    """The record of an accepted ballot, made and logged once (the unique ballot id makes
    concurrent makers harmless); None for a ballot not accepted, or shredded."""
    if ballot.outcome != "accepted" or ballot.document is None:
        return None
    existing = AgreementRecord.objects.filter(ballot_id=ballot.pk).first()
    if existing is not None:
        return existing
    room = _plenary(ballot.mediation_id)
    key = log.room_data_key(room)
    if key is None:
        return None
    pdf = render_pdf(ballot)
    digest = signing.sha256_hex(pdf)
    # crypto.aead seals text: the bytes go in as base64.
    sealed = aead.encrypt(
        key, base64.b64encode(pdf).decode("ascii"), aad=_aad(mediation_id=ballot.mediation_id, ballot_id=ballot.pk)
    )
    try:
        with transaction.atomic():
            frame = log.append(
                room_id=room.pk,
                type=frames.AGREEMENT_RECORD,
                data={"ballot_id": str(ballot.pk), "sha256": digest, "size": len(pdf), "url": record_url(ballot.pk)},
            )
            # A second maker fails here and its event rolls back with it.
            record = AgreementRecord.objects.create(
                mediation_id=ballot.mediation_id,
                ballot_id=ballot.pk,
                sha256=digest,
                size=len(pdf),
                content=sealed,
                seq=frame["seq"],
            )
            broadcast.to_room(room.pk, frame)
    except IntegrityError:
        return AgreementRecord.objects.get(ballot_id=ballot.pk)
    return record


def agreement_records_due(now: datetime | None = None) -> int:
    """The worker's pass: a record for each accepted ballot that has none yet."""
    from ballots.models import Ballot

    made = 0
    pending = Ballot.objects.filter(outcome="accepted").exclude(
        pk__in=AgreementRecord.objects.values("ballot_id")
    )
    for ballot in pending.select_related("offer", "mediation"):
        try:
            made += agreement_record_make(ballot=ballot) is not None
        except Exception:  # noqa: BLE001 - one record that fails must not stop the worker's other passes
            logger.exception("the record of ballot %s could not be made; retried next pass", ballot.pk)
    return made


# --- reading it ---------------------------------------------------------------------------------


def agreement_record_read(*, user, ballot_id) -> tuple[bytes, AgreementRecord]:
    """The PDF for an admitted member of the ballot's mediation, whatever their role."""
    from ballots.selectors import check_ballot_reader

    ballot, _member = check_ballot_reader(user, ballot_id)
    if ballot.outcome != "accepted":
        raise ActionError(Code.NOT_FOUND, _("This ballot has no record of agreement: its offer was not accepted."))
    record = AgreementRecord.objects.filter(ballot_id=ballot.pk).first() or agreement_record_make(ballot=ballot)
    key = log.room_data_key(_plenary(ballot.mediation_id))
    if record is None or key is None or not record.content:
        raise ActionError("gone", _("This record can no longer be read."), status=410)
    try:
        text = aead.decrypt(
            key, bytes(record.content), aad=_aad(mediation_id=ballot.mediation_id, ballot_id=ballot.pk)
        )
    except TamperedError:
        logger.error("the record of ballot %s failed authentication", ballot.pk)
        raise ActionError("gone", _("This record can no longer be read."), status=410) from None
    return base64.b64decode(text), record


# --- the document -------------------------------------------------------------------------------


def euros(cents: int | None) -> str:
    if cents is None:
        return _("none")
    return f"{formats.number_format(Decimal(cents) / 100, 2, use_l10n=True, force_grouping=True)} €"


def percent_number(bp: int) -> str:
    """Basis points as a percentage in the active language: 7500 → "75", 6667 → "66,67"."""
    return formats.number_format(Decimal(bp) / 100, 0 if bp % 100 == 0 else 2, use_l10n=True)


def percent(bp: int) -> str:
    return f"{percent_number(bp)} %"


def when(dt: datetime) -> str:
    return formats.date_format(timezone.localtime(dt), "DATETIME_FORMAT")


def _fonts() -> tuple[str, str]:
    """Vera, shipped with reportlab: the same glyphs (é, €, « ») and the same bytes on
    every machine, so the same ballot always gives the same PDF."""
    from reportlab import rl_config
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "PalabreSans" not in pdfmetrics.getRegisteredFontNames():
        folder = os.path.join(os.path.dirname(rl_config.__file__), "fonts")
        pdfmetrics.registerFont(TTFont("PalabreSans", os.path.join(folder, "Vera.ttf")))
        pdfmetrics.registerFont(TTFont("PalabreSans-Bold", os.path.join(folder, "VeraBd.ttf")))
    return "PalabreSans", "PalabreSans-Bold"


def _facts(ballot) -> dict:
    from ballots import rule
    from ballots.selectors import offer_text

    mediation = ballot.mediation
    offer = offer_text(ballot.offer) or {"title": _("(text no longer available)"), "terms": ""}
    mediators = (
        Membership.objects.filter(mediation=mediation, role=Role.MEDIATOR, status=MemberStatus.ADMITTED)
        .select_related("user")
        .order_by("pk")
    )
    company = (
        Membership.objects.filter(mediation=mediation, role=Role.COMPANY, status=MemberStatus.ADMITTED)
        .select_related("user")
        .order_by("pk")
    )
    key = next((k for k in signing.public_keys() if k["key_id"] == ballot.key_id), None)
    return {
        "mediation": mediation,
        "offer": offer,
        "mediators": [m.display_name for m in mediators],
        "company_people": [m.display_name for m in company],
        "needed": rule.needed(ballot.eligible, ballot.threshold_bp),
        "abstained": ballot.eligible - (ballot.accept or 0) - (ballot.refuse or 0),
        "public_key": key["public_key"] if key else _("(not in the current key ring)"),
        "document": signing.canonical_json(ballot.document).decode("utf-8"),
    }


def render_pdf(ballot) -> bytes:
    """The record, in the platform's language (French first: one document, one hash)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold = _fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=9.5, leading=13)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10.5)
    code = ParagraphStyle("code", fontName="Courier", fontSize=7.5, leading=9.5, wordWrap="CJK")
    title = ParagraphStyle("title", fontName=bold, fontSize=17, leading=22, spaceAfter=4)
    heading = ParagraphStyle("heading", fontName=bold, fontSize=11.5, leading=15, spaceBefore=9, spaceAfter=3)
    cell = ParagraphStyle("cell", parent=body, fontSize=9)
    cell_bold = ParagraphStyle("cell_bold", parent=cell, fontName=bold)

    def p(text, style=body):
        return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)

    def table(rows, widths=(52 * mm, 118 * mm)):
        t = Table([[p(k, cell_bold), v if not isinstance(v, str) else p(v, cell)] for k, v in rows], colWidths=widths)
        t.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#c8c8c8")),
                    ("TOPPADDING", (0, 0), (-1, -1), 3),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ]
            )
        )
        return t

    with translation.override(settings.LANGUAGE_CODE):
        facts = _facts(ballot)
        mediation, offer = facts["mediation"], facts["offer"]
        site = settings.PALABRE_SITE_URL
        story = [
            p(_("Record of agreement"), title),
            p(
                _("Collective mediation “%(title)s”: the offer below was accepted by the vote of the admitted consumers, under the rule fixed before the vote.")
                % {"title": mediation.title}
            ),
            p(_("The mediation"), heading),
            table(
                [
                    (_("Mediation"), f"{mediation.title} (n° {mediation.pk})"),
                    (_("Objective"), mediation.objective or "—"),
                    (_("Company"), mediation.company),
                    (_("Mediator"), ", ".join(facts["mediators"]) or "—"),
                    (_("Representatives of the company"), ", ".join(facts["company_people"]) or "—"),
                    (
                        _("Consumers"),
                        _("The %(n)d consumers admitted when the vote opened (their list is committed to by the electorate hash below).")
                        % {"n": ballot.eligible},
                    ),
                ]
            ),
            p(_("The offer accepted"), heading),
            table(
                [
                    (_("Title"), offer["title"]),
                    (_("Terms"), offer["terms"] or "—"),
                    (_("Amount per consumer"), euros(ballot.offer.amount_cents)),
                    (_("Offer"), f"n° {ballot.offer_id}"),
                ]
            ),
            p(_("The vote"), heading),
            table(
                [
                    (_("Opened"), when(ballot.opened_at)),
                    (_("Sealed"), when(ballot.sealed_at)),
                    (_("Admitted consumers (electorate)"), str(ballot.eligible)),
                    (_("Accept"), str(ballot.accept)),
                    (_("Refuse"), str(ballot.refuse)),
                    (_("Did not vote"), str(facts["abstained"])),
                    (
                        _("Threshold"),
                        _("%(percent)s of the admitted consumers, that is %(needed)d accepts of %(eligible)d; not voting counts as not accepting.")
                        % {"percent": percent(ballot.threshold_bp), "needed": facts["needed"], "eligible": ballot.eligible},
                    ),
                    (_("Outcome"), _("Accepted")),
                ]
            ),
            p(_("The seal"), heading),
            table(
                [
                    (_("Merkle root"), p(ballot.merkle_root, code)),
                    (_("Signature (Ed25519, base64)"), p(ballot.signature, code)),
                    (_("Key id"), p(ballot.key_id, code)),
                    (_("Public key (base64)"), p(facts["public_key"], code)),
                    (_("Offer hash"), p(ballot.document["offer_hash"], code)),
                    (_("Electorate hash"), p(ballot.document["electorate_hash"], code)),
                    (_("Signed document"), p(facts["document"], code)),
                ]
            ),
            p(_("How to verify it"), heading),
        ]
        steps = [
            _("The public key: %(url)s lists the platform's keys; take the one with the key id above.")
            % {"url": f"{site}/api/v1/keys"},
            _("The signature: serialise the signed document canonically (keys sorted, no spaces, UTF-8) and check the Ed25519 signature above over those bytes with that key.")
            ,
            _("The counts: every member downloads the bulletin board (%(url)s): each vote's leaf and choice, without names. Count accept and refuse, and recompute the Merkle root (SHA-256, leaves sorted, pairs hashed with the prefix 0x01): it must equal the root above.")
            % {"url": f"{site}/api/v1/ballots/{ballot.pk}/board"},
            _("Your own vote: with the receipt you were given when you voted, %(url)s gives the path from your leaf to the root.")
            % {"url": f"{site}/api/v1/ballots/{ballot.pk}/proof?receipt=…"},
            _("The platform checks all of it at once with: python manage.py verify_seal %(id)s")
            % {"id": ballot.pk},
            _("This file: its SHA-256 is written in the mediation's log (the event agreement.record): the file you hold is the one recorded if its hash is the same."),
        ]
        story += [p(f"{i}. {step}") for i, step in enumerate(steps, 1)]
        story += [Spacer(1, 6 * mm), p(_("Palabre — collective online mediation. Document made when the vote was sealed."), small)]

        out = io.BytesIO()
        doc = SimpleDocTemplate(
            out,
            pagesize=A4,
            leftMargin=20 * mm,
            rightMargin=20 * mm,
            topMargin=18 * mm,
            bottomMargin=18 * mm,
            title=_("Record of agreement — %(title)s") % {"title": mediation.title},
            author="Palabre",
            invariant=1,
        )
        doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return out.getvalue()


def _footer(canvas, doc) -> None:
    canvas.saveState()
    canvas.setFont("PalabreSans", 7.5)
    canvas.drawRightString(doc.pagesize[0] - doc.rightMargin, 10 * 2.83465, _("Page %(n)d") % {"n": doc.page})
    canvas.restoreState()
