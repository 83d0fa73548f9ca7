import base64


def ring(*entries: tuple[str, bytes]) -> str:
    """A ring string from (key_id, raw key) pairs, newest first."""
    return ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in entries)
