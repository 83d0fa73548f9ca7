"""``manage.py shred <mediation_id> [--force]``: crypto-shreds a mediation now, as the
worker does when its retention ends (``rooms.services.mediation_shred``): the data keys of
its rooms are destroyed; its events stay, their free text unrecoverable."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from rooms import services
from rooms.errors import ActionError
from rooms.models import Mediation, Room


class Command(BaseCommand):
    # A property, not gettext_lazy: argparse wants a real str (translated when asked).
    @property
    def help(self) -> str:
        return _(
            "Destroys the room keys of a closed mediation: its messages become unreadable for "
            "good, its seals stay verifiable."
        )

    def add_arguments(self, parser):
        parser.add_argument("mediation_id", help=_("id of the mediation to shred"))
        parser.add_argument(
            "--force",
            action="store_true",
            help=_("shred even a mediation that is not closed (it is closed first)"),
        )

    def handle(self, *args, mediation_id, force, **options):
        try:
            mediation = Mediation.objects.get(pk=int(mediation_id))
        except (ValueError, Mediation.DoesNotExist):
            raise CommandError(_("No mediation with id %(id)s.") % {"id": mediation_id}) from None
        try:
            shredded = services.mediation_shred(mediation=mediation, force=force)
        except ActionError as error:
            raise CommandError(
                _("%(reason)s Nothing was shredded; use --force to shred it anyway.")
                % {"reason": error.message}
            ) from None
        if not shredded:
            self.stdout.write(
                _("Mediation %(id)d was already shredded: nothing to do.") % {"id": mediation.pk}
            )
            return
        rooms = Room.objects.filter(mediation=mediation).count()
        self.stdout.write(
            _("Mediation %(id)d shredded: the keys of its %(rooms)d rooms are destroyed.")
            % {"id": mediation.pk, "rooms": rooms}
        )
