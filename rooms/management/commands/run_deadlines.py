"""The worker (Procfile ``worker``): closes what is due, forever; ``--once`` for one pass."""

import logging
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from rooms.deadlines import run_once

logger = logging.getLogger("palabre.worker")


class Command(BaseCommand):
    help = "Closes due mediations, seals due ballots, shreds mediations past retention."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args, once, interval, **options):
        while True:
            try:
                done = run_once()
                if any(done.values()):
                    logger.info("deadline pass: %s", done)
            except DatabaseError:
                if once:
                    raise
                logger.warning("deadline pass failed; retrying", exc_info=True)
                close_old_connections()
            if once:
                self.stdout.write(" ".join(f"{k}={v}" for k, v in done.items()))
                return
            time.sleep(interval)
