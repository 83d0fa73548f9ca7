"""Exceptions of the crypto package.

Callers catch these, never the ``cryptography`` exceptions underneath, so that a
library upgrade or a change of primitive can't leak into rooms or ballots.
"""


class CryptoError(Exception):
    """Base class: anything that went wrong in ``crypto``."""


class TamperedError(CryptoError):
    """Authentication failed: wrong key, altered bytes or wrong associated data.

    Raised instead of ever returning plaintext that did not authenticate.
    """


class KeyUnavailable(CryptoError):
    """The key id is not in the ring, or the key was destroyed by crypto-shredding."""


class KeyRingError(CryptoError):
    """A key ring string (from the environment or the data folder) is malformed."""
