"""Mediations, their rooms and members, and each room's append-only log.

Lifecycle is told by timestamps plus the log (Helios' ``frozen_at``/``ElectionLog``):
``closed_at``, ``shredded_at``; the room log tells the story.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
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


REGISTRATION_FIELD_TYPES = ("text", "textarea", "integer", "amount")


def validate_registration_fields(value) -> None:
    """The shape of ``Mediation.registration_fields``: checked when staff save a mediation,
    so a registration never meets a field it cannot read."""
    if not isinstance(value, list) or len(value) > 30:
        raise ValidationError(_("A list of at most 30 fields."))
    names = set()
    for field in value:
        name = field.get("name") if isinstance(field, dict) else None
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 50 or name in names:
            raise ValidationError(_("Each field has a unique 'name': letters, digits and _."))
        names.add(name)
        label = field.get("label", name)
        if not (isinstance(label, str) or (isinstance(label, dict) and all(isinstance(v, str) for v in label.values()))):
            raise ValidationError(_("A field's 'label' is a string or {\"fr\": …, \"en\": …}."))
        if field.get("type", "text") not in REGISTRATION_FIELD_TYPES:
            raise ValidationError(_("A field's 'type' is text, textarea, integer or amount."))
        if not isinstance(field.get("required", False), bool):
            raise ValidationError(_("A field's 'required' is true or false."))
        max_length = field.get("max_length", 0)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 0 <= max_length <= 4000:
            raise ValidationError(_("A field's 'max_length' is a number of characters, 4000 at most."))


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
    # What a consumer answers to register (issue 10): a list of
    # {"name", "label" (a string or {"fr", "en"}), "type", "required", "max_length"}.
    registration_fields = models.JSONField(
        _("registration fields"),
        default=list,
        blank=True,
        validators=[validate_registration_fields],
        help_text=_(
            'A list of {"name": "contract_number", "label": {"fr": "…", "en": "…"}, '
            '"type": "text" | "textarea" | "integer" | "amount", "required": true}.'
        ),
    )
    registration_documents_min = models.PositiveSmallIntegerField(
        _("supporting documents required"), default=0, validators=[MaxValueValidator(10)]
    )
    registration_in_dialogue = models.BooleanField(
        _("registration stays open during the dialogue"),
        default=True,
        help_text=_("Until the registration deadline, if there is one."),
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
    # Email notices (issue 10): in this language, unless the member turned them off.
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, default="fr")
    notices_enabled = models.BooleanField(_("email notices"), default=True)

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


class Registration(models.Model):
    """What a consumer sent to join a mediation, and the mediator's decision on it.

    The answers and the reason are free text: AES-256-GCM under the plenary room's key
    (so they are shredded with the mediation), bound to this membership
    (``rooms.registrations``)."""

    membership = models.OneToOneField(
        Membership, on_delete=models.CASCADE, primary_key=True, related_name="registration"
    )
    answers = models.BinaryField(null=True, editable=False)
    submitted_at = models.DateTimeField(_("submitted at"), default=timezone.now)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.BinaryField(null=True, editable=False)

    class Meta:
        verbose_name = _("registration")
        verbose_name_plural = _("registrations")

    def __str__(self):
        return f"registration of {self.membership_id}"


class RegistrationDocument(models.Model):
    """A supporting document: its bytes and its file name encrypted like the answers,
    its type read from its first bytes (never from its name)."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="documents")
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    name = models.BinaryField(editable=False)
    content = models.BinaryField(editable=False)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("supporting document")
        verbose_name_plural = _("supporting documents")
        ordering = ["registration", "pk"]

    def __str__(self):
        return f"document {self.pk} of {self.registration_id}"


class NoticeKind(models.TextChoices):
    ADMITTED = "admitted", _("admitted")
    REFUSED = "refused", _("refused")
    BALLOT_OPENED = "ballot_opened", _("a ballot opens")
    BALLOT_REMINDER = "ballot_reminder", _("a ballot closes soon")
    BALLOT_SEALED = "ballot_sealed", _("a ballot is sealed")


class NoticeState(models.TextChoices):
    PENDING = "pending", _("pending")
    SENT = "sent", _("sent")
    SKIPPED = "skipped", _("skipped")
    FAILED = "failed", _("failed")


class Notice(models.Model):
    """The email outbox (issue 10): one row per notice, unique per (member, kind,
    subject), so enqueuing twice sends once; only the worker sends (``rooms.notices``)."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=NoticeKind.choices)
    # The ballot a ballot notice is about; 0 for the admission notices.
    subject_id = models.PositiveBigIntegerField(default=0)
    state = models.CharField(max_length=10, choices=NoticeState.choices, default=NoticeState.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "kind", "subject_id"], name="one_notice_per_subject")
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self):
        return f"{self.kind} {self.subject_id} to {self.membership_id} ({self.state})"


class NoticeBatch(models.Model):
    """The notices of one kind about one subject (a ballot) have been enqueued: the
    worker's passes look for subjects without their batch, not at every member again."""

    kind = models.CharField(max_length=20, choices=NoticeKind.choices)
    subject_id = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "subject_id"], name="one_batch_per_subject")]

    def __str__(self):
        return f"{self.kind} {self.subject_id}"


class AgreementRecord(models.Model):
    """The PDF record of an accepted ballot (``rooms.record``), encrypted like the offer's
    terms it states; its SHA-256 is in the plenary log at ``seq``."""

    mediation = models.ForeignKey(Mediation, on_delete=models.CASCADE, related_name="+")
    # The ballot (ballots.Ballot): an id, so that rooms' tables don't depend on ballots'.
    ballot_id = models.PositiveBigIntegerField(unique=True)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    content = models.BinaryField(editable=False)
    seq = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("record of agreement")
        verbose_name_plural = _("records of agreement")

    def __str__(self):
        return f"record of ballot {self.ballot_id}"
