"""One translation of failures: the operator's commands read the same ApiError as the
sender, with the call named (app/twilio/errors.py)."""

import pytest
import requests
import urllib3
from twilio.base.exceptions import TwilioRestException

from app.twilio.errors import ApiError, api_errors


def refused() -> requests.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused")
    reason.__cause__ = ConnectionRefusedError(111, "Connection refused")
    pool = urllib3.HTTPSConnectionPool("conversations.twilio.com", 443)
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(pool, "/v1/x", reason))


@pytest.mark.parametrize("raised, said, transient", [
    (TwilioRestException(409, "/v1/x", "Unable to create record", code=50416),
     "creating the conversation: HTTP 409, Twilio error 50416: Unable to create record",
     False),
    (TwilioRestException(503, "/v1/x", "unavailable"),
     "creating the conversation: HTTP 503: unavailable", True),
    (refused(), "creating the conversation: could not connect to "
                "conversations.twilio.com:443: connection refused", True),
], ids=["4xx", "5xx-without-code", "refused"])
def test_a_commands_failure_names_the_call(raised, said, transient):
    """With `what`, the message says which call failed, its HTTP status and Twilio's
    code; status, code and transience are kept for the caller."""
    with pytest.raises(ApiError) as caught, api_errors("creating the conversation"):
        raise raised
    assert caught.value.message == said
    assert caught.value.transient is transient
    assert caught.value.status == getattr(raised, "status", None)


def test_other_errors_pass_through():
    """A failure that is not the call's (a bug) is not dressed up as Twilio's."""
    with pytest.raises(KeyError), api_errors("listing conversations"):
        raise KeyError("x")
