"""What Twilio's delivery and channel error codes mean, and what usually fixes them, for
log lines, the CLI and the dashboard.

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

# The usual fix, as a support lead would tell an operator (Twilio's error pages say more).
FIXES = {
    20404: "check the Conversation SID; the conversation may have been deleted",
    21610: "nothing to resend: the customer opted out; they can text START to opt back in",
    30001: "too many messages queued on the sender: slow down, then send again later",
    30002: "the Twilio account is suspended: contact Twilio support",
    30003: "the phone is off or out of coverage: send again later",
    30004: "the recipient blocked the number or has do-not-disturb: do not resend",
    30005: "the number does not exist: ask the customer for a correct number",
    30006: "a landline or unreachable carrier: reach the customer on another channel",
    30007: "the carrier flagged the content as spam: reword, register the sender (A2P 10DLC)",
    30008: "unknown carrier error: requeue once; if it repeats, contact Twilio support",
    30017: "carrier congestion: send again later",
    30022: "over the 10DLC throughput: lower TWILIO_CONCURRENCY_LIMIT or raise the campaign tier",
    30023: "10DLC daily cap reached: resend tomorrow or raise the brand's limit",
    30032: "verify the toll-free number in the Twilio Console",
    30034: "register the number with an A2P 10DLC campaign",
    63016: "outside WhatsApp's 24-hour window: reply with an approved template (ContentSid)",
    63018: "WhatsApp rate limit: requeue later",
    63024: "not a valid WhatsApp recipient: check the address",
}


def fix(code) -> str | None:
    """The usual fix for a Twilio error code (None when there is no advice)."""
    try:
        return FIXES.get(int(code)) if code else None
    except (TypeError, ValueError):
        return None


def describe(code) -> str | None:
    """Return the meaning of a Twilio error code (None for no error, 0 or unknown)."""
    try:
        number = int(code)
    except (TypeError, ValueError):
        return None
    if number == 0:
        return None
    return MEANINGS.get(number, f"Twilio error {number}: see https://www.twilio.com/docs/api/errors/{number}")


# Refusals that a second try cannot change: the customer opted out or blocked the number,
# the address is wrong, the account or sender is not allowed, WhatsApp free text is too
# late (63016: only a template may go now).
OPTED_OUT = 21610  # the recipient replied STOP: never message them again, nor retry
HOPELESS = frozenset({20404, 21610, 30002, 30004, 30005, 30006, 30032, 30033, 30034,
                      63016, 63024, 63051})


def requeue_helps(code) -> bool:
    """Whether sending a reply Twilio refused with `code` again may succeed."""
    try:
        return int(code or 0) not in HOPELESS
    except (TypeError, ValueError):
        return True
