from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoomsConfig(AppConfig):
    name = "rooms"
    verbose_name = _("Mediations and rooms")

    def ready(self):
        from rooms import actions  # noqa: F401 - registers the room actions
