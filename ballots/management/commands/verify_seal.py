"""``manage.py verify_seal <ballot_id>`` (PROTOCOL.md): exit 0 and ``OK`` when the seal,
its signature, the counts and the Merkle root all match the stored votes; exit 1 and
what differs otherwise."""

import sys

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from ballots.verify import verify_ballot


class Command(BaseCommand):
    help = "Checks a ballot's seal against its stored votes, electorate and log."

    def add_arguments(self, parser):
        parser.add_argument("ballot_id")

    def handle(self, *args, ballot_id, **options):
        if not (ballot_id.isascii() and ballot_id.isdigit() and len(ballot_id) < 19):
            problems = [_("No ballot %(id)s.") % {"id": ballot_id}]
        else:
            problems = verify_ballot(int(ballot_id))
        if not problems:
            self.stdout.write("OK")
            return
        for problem in problems:
            self.stdout.write(problem)
        sys.exit(1)
