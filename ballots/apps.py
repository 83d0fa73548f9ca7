from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BallotsConfig(AppConfig):
    name = "ballots"
    verbose_name = _("Offers and ballots")

    def ready(self):
        from ballots import actions  # noqa: F401 - registers the ballot frames
        from ballots.services import ballots_scrub_sealed, ballots_seal_due
        from rooms import deadlines

        # Before the mediations' pass (50): a ballot never closes after its mediation.
        deadlines.register(10, ballots_seal_due)
        deadlines.register(11, ballots_scrub_sealed)
