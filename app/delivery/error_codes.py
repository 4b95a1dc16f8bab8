"""What Twilio's delivery and channel error codes mean, for log lines and the CLI.

https://www.twilio.com/docs/api/errors
"""

MEANINGS = {
    20404: "resource not found (wrong Conversation SID?)",
    21610: "recipient replied STOP: do not message again",
    30001: "queue overflow",
    30002: "account suspended",
    30003: "unreachable destination handset",
    30004: "message blocked (opted out or do-not-disturb)",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier as spam",
    30008: "unknown error",
    30009: "missing segment",
    30010: "message price exceeds MaxPrice",
    30011: "MMS not supported by the receiving phone number",
    30017: "carrier network congestion",
    30019: "content size exceeds carrier limit",
    30022: "US A2P 10DLC rate limit exceeded",
    30023: "US A2P 10DLC daily cap reached",
    30027: "US A2P 10DLC T-Mobile daily limit reached",
    30032: "toll-free number has not been verified",
    30033: "US A2P 10DLC campaign suspended",
    30034: "message from an unregistered 10DLC number",
    30035: "number is still being configured",
    30036: "validity period expired",
    63013: "channel policy violation",
    63016: "WhatsApp free-form message outside the 24-hour window: use an approved template",
    63018: "channel rate limit exceeded",
    63024: "invalid message recipient",
    63051: "WhatsApp Business Account is locked",
}


def describe(code) -> str | None:
    """Return the meaning of a Twilio error code (None for no error, 0 or unknown)."""
    try:
        number = int(code)
    except (TypeError, ValueError):
        return None
    if number == 0:
        return None
    return MEANINGS.get(number, f"Twilio error {number}: see https://www.twilio.com/docs/api/errors/{number}")
