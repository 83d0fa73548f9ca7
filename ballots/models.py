"""Offers, ballots and votes (DESIGN.md "The vote rule (exact)", "The seal").

Secrecy by construction (issue 6, item 5): "who voted" (``Elector.has_voted``) and "what
was voted" (``Vote``) are two tables with nothing that joins them: a vote has no foreign
key to a person, no autoincrement id whose order would follow the order of casting, and
no timestamp; its primary key is the commitment ``H(receipt ‖ ballot ‖ choice)``, a hash
of 256 random bits only the voter holds. Once sealed, the worker rewrites both tables
(``services.ballot_scrub``), so neither row order nor PostgreSQL's per-row transaction
ids can pair an elector with a vote afterwards.

Lifecycle as timestamps (Helios): ``opened_at``, ``closes_at``, ``sealed_at``; the room
log tells the story (``offer.submitted``, ``ballot.opened``, ``ballot.sealed``).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from rooms.models import Mediation, Membership, Room, threshold_str

TALLY_SHARDS = 16


class Choice(models.TextChoices):
    ACCEPT = "accept", _("accept")
    REFUSE = "refuse", _("refuse")


class Outcome(models.TextChoices):
    ACCEPTED = "accepted", _("accepted")
    REJECTED = "rejected", _("rejected")


class SealReason(models.TextChoices):
    CERTAIN = "certain", _("outcome certain")
    DEADLINE = "deadline", _("deadline")
    CLOSED = "closed", _("closed by the mediator")


class Offer(models.Model):
    """An offer of the company, immutable once submitted. Its free text (title, terms)
    is not here: it lives only in the ``offer.submitted`` event of the plenary log,
    encrypted with the room's key (``rooms.log.append(secret=...)``), and is shredded
    with it. ``offer_hash`` is what the seal commits to, so it outlives the text."""

    mediation = models.ForeignKey(Mediation, on_delete=models.CASCADE, related_name="offers")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    amount_cents = models.BigIntegerField(_("amount per consumer (cents)"), null=True, blank=True)
    submitted_at = models.DateTimeField(_("submitted at"))
    # The seq of its ``offer.submitted`` event in ``room``'s log.
    seq = models.PositiveBigIntegerField(default=0)
    # Hex SHA-256 of the canonical JSON of {"id", "title", "terms", "amount_cents"}.
    offer_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        ordering = ["mediation", "submitted_at"]

    def __str__(self):
        return _("Offer %(id)s") % {"id": self.pk}


class Ballot(models.Model):
    offer = models.OneToOneField(Offer, on_delete=models.CASCADE, related_name="ballot")
    mediation = models.ForeignKey(Mediation, on_delete=models.CASCADE, related_name="ballots")
    # The plenary room, where the ballot is logged and its turnout broadcast.
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField(_("opened at"))
    closes_at = models.DateTimeField(_("closes at"))
    # The electorate, frozen at opening: the admitted consumers of that instant.
    eligible = models.PositiveIntegerField(_("eligible"))
    threshold_bp = models.PositiveIntegerField(_("threshold (basis points)"))
    electorate_hash = models.CharField(max_length=64)
    opened_seq = models.PositiveBigIntegerField(default=0)

    sealed_at = models.DateTimeField(_("sealed at"), null=True, blank=True)
    seal_reason = models.CharField(max_length=16, choices=SealReason.choices, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, blank=True)
    accept = models.PositiveIntegerField(null=True, blank=True)
    refuse = models.PositiveIntegerField(null=True, blank=True)
    merkle_root = models.CharField(max_length=64, blank=True)
    # Exactly the signed document of PROTOCOL.md, as signed.
    document = models.JSONField(null=True, blank=True)
    signature = models.CharField(max_length=128, blank=True)
    key_id = models.CharField(max_length=40, blank=True)
    sealed_seq = models.PositiveBigIntegerField(null=True, blank=True)
    # When the vote and elector rows were rewritten after the seal (``ballot_scrub``).
    scrubbed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("ballot")
        verbose_name_plural = _("ballots")
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["sealed_at", "closes_at"])]

    def __str__(self):
        return _("Ballot %(id)s") % {"id": self.pk}

    @property
    def threshold(self) -> str:
        return threshold_str(self.threshold_bp)

    @property
    def is_sealed(self) -> bool:
        return self.sealed_at is not None


class Elector(models.Model):
    """Who may vote on a ballot, and whether they have: never what they voted."""

    ballot = models.ForeignKey(Ballot, on_delete=models.CASCADE, related_name="electors")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    has_voted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ballot", "membership"], name="one_elector_per_member")
        ]

    def __str__(self):
        return f"{self.ballot_id}/{self.membership_id}"


class Vote(models.Model):
    """What was voted: a commitment and its choice, nothing about who or when."""

    commitment = models.CharField(max_length=64, primary_key=True)
    ballot = models.ForeignKey(Ballot, on_delete=models.CASCADE, related_name="votes")
    choice = models.CharField(max_length=8, choices=Choice.choices)

    class Meta:
        ordering = ["commitment"]

    def __str__(self):
        return self.commitment


class Tally(models.Model):
    """Running counts in shards: each cast adds one to a random shard, so concurrent
    casts spread over 16 rows instead of queueing on one. Only the seal's recount of
    the ``Vote`` rows goes into the seal; the shards decide *when* to seal."""

    ballot = models.ForeignKey(Ballot, on_delete=models.CASCADE, related_name="tallies")
    shard = models.PositiveSmallIntegerField()
    accept = models.PositiveIntegerField(default=0)
    refuse = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ballot", "shard"], name="one_tally_per_shard")
        ]

    def __str__(self):
        return f"{self.ballot_id}#{self.shard}"
