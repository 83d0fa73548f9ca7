"""Secrets the embedded default generates on first run into its data folder.

Production reads its keys from the environment; this exists so that ``runserver`` on
a fresh checkout works with no setup, yet never with a key shared by every install.
"""

import os
import pathlib
import tempfile
import time
from collections.abc import Callable

from .errors import CryptoError


def ensure_secret_file(path: pathlib.Path, generate: Callable[[], str]) -> str:
    """Return the secret stored at ``path``, creating it (mode 0600) on first use.

    Never overwrites: a master key replaced after rooms were wrapped under it would
    make them unreadable forever. Two processes starting at once both end up with
    the first one's secret: the file is written in full to a temporary name, then
    linked into place, which fails if ``path`` already exists.
    """
    path = pathlib.Path(path)
    if path.exists():
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = generate().strip()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # O_EXCL, 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read(path)
        except OSError:
            # A file system without hard links: create in place, exclusively.
            return _create_in_place(path, value)
    finally:
        os.unlink(temporary)
    return value


def _create_in_place(path: pathlib.Path, value: str) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def _read(path: pathlib.Path) -> str:
    # Only the in-place fallback can expose a file still being written: wait briefly.
    for _ in range(50):
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
        time.sleep(0.02)
    raise CryptoError(f"{path} is empty: delete it to generate a new secret")
