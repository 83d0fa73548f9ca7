"""Staff see offers and ballots, read-only: dates, turnout and, once sealed, the counts
and the seal. Never an offer's text (it is only stored encrypted in the room log), and
never who voted what: votes and electors are not in the admin at all, and no page here
joins a person to a choice."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ballots import selectors
from ballots.models import Ballot, Offer


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Offer)
class OfferAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "mediation", "submitted_at", "amount_cents")
    list_filter = ("submitted_at",)
    fields = ("mediation", "room", "submitted_at", "seq", "amount_cents", "offer_hash")
    readonly_fields = fields
    list_select_related = ("mediation",)


@admin.register(Ballot)
class BallotAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "mediation", "opened_at", "closes_at", "eligible", "turnout", "sealed_at", "outcome")
    list_filter = ("outcome", "seal_reason")
    fields = (
        "mediation", "offer", "opened_at", "closes_at", "eligible", "threshold", "electorate_hash",
        "turnout", "sealed_at", "seal_reason", "outcome", "accept", "refuse", "merkle_root", "signature", "key_id",
    )
    readonly_fields = fields
    list_select_related = ("mediation", "offer")

    @admin.display(description=_("voted"))
    def turnout(self, ballot):
        return selectors.turnout(ballot)

    @admin.display(description=_("threshold"))
    def threshold(self, ballot):
        return ballot.threshold
