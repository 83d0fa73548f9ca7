"""Mediations, their rooms and members, and each room's append-only log.

Lifecycle is told by timestamps plus the log (Helios' ``frozen_at``/``ElectionLog``):
``closed_at``, ``shredded_at``; the room log tells the story.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Phase(models.TextChoices):
    DRAFT = "draft", _("draft")
    REGISTRATION = "registration", _("registration")
    DIALOGUE = "dialogue", _("dialogue")
    CLOSED = "closed", _("closed")
    SHREDDED = "shredded", _("shredded")


class Outcome(models.TextChoices):
    NONE = "", _("none yet")
    AGREEMENT = "agreement", _("agreement")
    NO_AGREEMENT = "no_agreement", _("no agreement")
    EXPIRED = "expired", _("expired")


class Mediation(models.Model):
    title = models.CharField(_("title"), max_length=200)
    company = models.CharField(_("company"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    objective = models.TextField(_("objective"), blank=True)
    phase = models.CharField(_("phase"), max_length=16, choices=Phase.choices, default=Phase.DRAFT)
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.NONE, blank=True
    )
    registration_closes_at = models.DateTimeField(_("registration closes at"), null=True, blank=True)
    closes_at = models.DateTimeField(_("closes at"))
    # Stored exactly, in basis points: 7500 is 75 %, so the rule stays in integers.
    threshold_bp = models.PositiveIntegerField(
        _("threshold (basis points)"),
        default=7500,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
    )
    retention_days = models.PositiveIntegerField(_("retention (days)"), default=365)
    auto_admit = models.BooleanField(
        _("admit registrations at once"),
        default=True,
        help_text=_("Otherwise the mediator admits each registration."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    shredded_at = models.DateTimeField(_("shredded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("mediation")
        verbose_name_plural = _("mediations")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["phase", "closes_at"])]

    def __str__(self):
        return self.title

    @property
    def threshold(self) -> str:
        """The decimal string of PROTOCOL.md: 7500 → ``"0.75"``."""
        return threshold_str(self.threshold_bp)

    def is_past_deadline(self, now=None) -> bool:
        return (now or timezone.now()) >= self.closes_at

    @property
    def is_open(self) -> bool:
        return self.phase in (Phase.REGISTRATION, Phase.DIALOGUE) and self.closed_at is None


def threshold_str(bp: int) -> str:
    value = (Decimal(bp) / Decimal(10_000)).normalize()
    return format(value, "f")


class Role(models.TextChoices):
    CONSUMER = "consumer", _("consumer")
    MEDIATOR = "mediator", _("mediator")
    COMPANY = "company", _("company")


class MemberStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    ADMITTED = "admitted", _("admitted")
    REFUSED = "refused", _("refused")


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    mediation = models.ForeignKey(Mediation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.CONSUMER)
    status = models.CharField(
        _("status"), max_length=16, choices=MemberStatus.choices, default=MemberStatus.PENDING
    )
    # muted with muted_until NULL: until unmuted; muted_until in the past: no longer muted.
    muted = models.BooleanField(_("muted"), default=False)
    muted_until = models.DateTimeField(_("muted until"), null=True, blank=True)
    joined_at = models.DateTimeField(_("joined at"), default=timezone.now)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "mediation"], name="one_membership_per_user")
        ]
        indexes = [models.Index(fields=["mediation", "role", "status"])]

    def __str__(self):
        return f"{self.user} @ {self.mediation_id} ({self.role})"

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    def is_muted(self, now=None) -> bool:
        if not self.muted:
            return False
        return self.muted_until is None or self.muted_until > (now or timezone.now())

    def public(self) -> dict:
        return {"member_id": str(self.pk), "display_name": self.display_name, "role": self.role}


class RoomKind(models.TextChoices):
    PLENARY = "plenary", _("plenary")
    CAUCUS = "caucus", _("caucus")


class Room(models.Model):
    mediation = models.ForeignKey(Mediation, on_delete=models.CASCADE, related_name="rooms")
    kind = models.CharField(_("kind"), max_length=16, choices=RoomKind.choices)
    title = models.CharField(_("title"), max_length=200)
    # A caucus is the mediator with this one member (a consumer or a company member).
    caucus_member = models.ForeignKey(
        Membership, on_delete=models.CASCADE, null=True, blank=True, related_name="caucus_rooms"
    )
    moderated = models.BooleanField(_("moderated"), default=False)
    # The newest seq of the log. Incremented in the same transaction that inserts the
    # event, so the row lock makes seq gapless and unique under concurrent writers.
    last_seq = models.PositiveBigIntegerField(default=0)
    # The room's data key, wrapped by a master key (crypto.keyring); NULL once shredded.
    wrapped_key = models.BinaryField(null=True, editable=False)
    master_key_id = models.CharField(max_length=40, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        constraints = [
            models.UniqueConstraint(
                fields=["mediation"],
                condition=models.Q(kind="plenary"),
                name="one_plenary_per_mediation",
            ),
            models.UniqueConstraint(
                fields=["mediation", "caucus_member"],
                condition=models.Q(kind="caucus"),
                name="one_caucus_per_member",
            ),
        ]

    def __str__(self):
        return f"{self.mediation_id}/{self.kind}/{self.title}"


class Event(models.Model):
    """One entry of a room's log: the frame the socket sends, minus its secret fields,
    which are AES-256-GCM ciphertext bound to (room, seq, type)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=32)
    at = models.DateTimeField(default=timezone.now)
    author = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict)
    ciphertext = models.BinaryField(null=True)
    # Which fields of the frame live in the ciphertext ("body", "offer.terms"): after a
    # redaction or a shred they are still shown, as null.
    secret_fields = models.JSONField(default=list)
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "seq"], name="gapless_room_seq")]
        ordering = ["room", "seq"]

    def __str__(self):
        return f"{self.room_id}#{self.seq} {self.type}"
