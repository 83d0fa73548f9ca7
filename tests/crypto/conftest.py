import pytest

from .rings import ring


@pytest.fixture
def master_keys(settings):
    """A known one-key master ring; tests prepend keys to it to rotate."""
    settings.PALABRE_MASTER_KEYS = ring(("mk-old", b"\x11" * 32))
    return settings


@pytest.fixture
def sealing_keys(settings):
    """Seed 00 01 .. 1f: the RFC 8032 key, so signatures are fixed vectors."""
    settings.PALABRE_SEALING_KEYS = ring(("sk-test", bytes(range(32))))
    return settings
