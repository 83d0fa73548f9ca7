"""The frame types of PROTOCOL.md, named once."""

# Client → server
SYNC = "sync"
CHAT_SEND = "chat.send"
OFFER_SUBMIT = "offer.submit"
BALLOT_OPEN = "ballot.open"
BALLOT_CLOSE = "ballot.close"
VOTE_CAST = "vote.cast"
MESSAGE_REDACT = "message.redact"
MEMBER_MUTE = "member.mute"
MEMBER_UNMUTE = "member.unmute"
ROOM_MODERATE = "room.moderate"
CAUCUS_OPEN = "caucus.open"
PING = "ping"

# Server → client, logged
CHAT_MESSAGE = "chat.message"
OFFER_SUBMITTED = "offer.submitted"
BALLOT_OPENED = "ballot.opened"
BALLOT_SEALED = "ballot.sealed"
MESSAGE_REDACTED = "message.redacted"
ROOM_CLOSED = "room.closed"
ROOM_MODERATED = "room.moderated"
MEMBER_MUTED = "member.muted"
MEMBER_UNMUTED = "member.unmuted"
MEDIATION_PHASE = "mediation.phase"
AGREEMENT_RECORDED = "agreement.recorded"
AGREEMENT_RECORD = "agreement.record"

# Server → client, not logged
WELCOME = "welcome"
ACK = "ack"
VOTE_RECEIPT = "vote.receipt"
BALLOT_PROGRESS = "ballot.progress"
ROOM_COUNTS = "room.counts"
SYNCED = "synced"
PONG = "pong"
CAUCUS_OPENED = "caucus.opened"
ERROR = "error"


class Code:
    """Error codes of the ``error`` frame."""

    BAD_REQUEST = "bad_request"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    MUTED = "muted"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    ROOM_CLOSED = "room_closed"
    BALLOT_CLOSED = "ballot_closed"
    ALREADY_VOTED = "already_voted"
    NOT_ELIGIBLE = "not_eligible"
    UNAVAILABLE = "unavailable"


# WebSocket close codes
CLOSE_FORBIDDEN = 4403
CLOSE_LOGGED_OUT = 4401
CLOSE_TOO_SLOW = 4409
