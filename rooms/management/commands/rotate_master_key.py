"""``manage.py rotate_master_key``: rewraps every room's data key under the newest master
key of ``PALABRE_MASTER_KEYS``, so that older master keys can be retired (issue 5).

Rotating an operator's way: prepend a new key to the ring and deploy (new rooms are
wrapped under it, old ones still unwrap), run this command, then drop the old key from
the ring once it reports that no room depends on it.

Only the rooms' wrapped keys change (a few bytes a room): data keys stay the same, so no
event is re-encrypted or even read, and the rooms stay live throughout. Each room row is
updated only if its wrapped key is still the one that was rewrapped: a room shredded, or
rewrapped by another run, in the meantime is left as it is (never a key brought back).
"""

from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _

from crypto import keyring
from crypto.errors import CryptoError
from rooms.models import Room


class Command(BaseCommand):
    # A property, not gettext_lazy: argparse wants a real str (translated when asked).
    @property
    def help(self) -> str:
        return _(
            "Rewraps every room key under the newest master key of PALABRE_MASTER_KEYS, "
            "so that older master keys can be removed from the ring."
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help=_("rooms rewrapped per transaction (default 500)"),
        )

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError(_("--batch-size must be at least 1."))
        try:
            newest = keyring.newest_master_key_id()
        except CryptoError as error:
            raise CommandError(str(error)) from None

        counts = Counter()
        failed: dict[int, str] = {}
        after = 0
        while True:
            batch = list(
                Room.objects.filter(pk__gt=after, wrapped_key__isnull=False)
                .exclude(master_key_id=newest)
                .order_by("pk")
                .values_list("pk", "master_key_id", "wrapped_key")[:batch_size]
            )
            if not batch:
                break
            after = batch[-1][0]
            # Unwrap and wrap outside the transaction: it only holds the row locks for
            # the conditional UPDATEs, so writers of these rooms barely wait.
            rewrapped = []
            for pk, key_id, wrapped in batch:
                old = bytes(wrapped)
                try:
                    new_id, new_wrapped = keyring.rewrap_data_key(key_id, old)
                except CryptoError as error:
                    failed[pk] = str(error)
                    continue
                rewrapped.append((pk, key_id, old, new_id, new_wrapped))
            with transaction.atomic():
                for pk, old_id, old_wrapped, new_id, new_wrapped in rewrapped:
                    updated = Room.objects.filter(
                        pk=pk, master_key_id=old_id, wrapped_key=old_wrapped
                    ).update(master_key_id=new_id, wrapped_key=new_wrapped)
                    counts["rewrapped" if updated else "changed"] += 1

        current = Room.objects.filter(wrapped_key__isnull=False, master_key_id=newest).count()
        shredded = Room.objects.filter(wrapped_key__isnull=True).count()
        still_old = (
            Room.objects.filter(wrapped_key__isnull=False)
            .exclude(master_key_id=newest)
            .values_list("master_key_id", flat=True)
            .distinct()
        )
        self.stdout.write(
            _(
                "Newest master key: %(newest)s. Room keys rewrapped: %(rewrapped)d; "
                "now under it in all: %(current)d; changed during the run and left as they "
                "were: %(changed)d; shredded (no key): %(shredded)d; failed: %(failed)d."
            )
            % {
                "newest": newest,
                "rewrapped": counts["rewrapped"],
                "current": current,
                "changed": counts["changed"],
                "shredded": shredded,
                "failed": len(failed),
            }
        )
        for pk, reason in sorted(failed.items()):
            self.stderr.write(_("room %(room)d: %(reason)s") % {"room": pk, "reason": reason})
        remaining = sorted(still_old)
        if failed:
            raise CommandError(
                _(
                    "%(count)d room keys could not be rewrapped (listed above): keep the master "
                    "keys they name in the ring, or those rooms stay unreadable."
                )
                % {"count": len(failed)}
            )
        if remaining:
            self.stdout.write(
                _(
                    "Room keys are still wrapped under %(keys)s (rooms created or changed during "
                    "the run): run the command again before removing a key from the ring."
                )
                % {"keys": ", ".join(remaining)}
            )
        else:
            self.stdout.write(
                _(
                    "No room key depends on another master key: every key but %(newest)s can "
                    "be removed from PALABRE_MASTER_KEYS."
                )
                % {"newest": newest}
            )
