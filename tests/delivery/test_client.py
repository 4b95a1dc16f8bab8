"""Client: which failures are worth trying again (network, timeouts, 429, 5xx) and which not."""

import json

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.response import Response

from app.delivery.client import ApiError, _api_errors


def page_error(status: int) -> TwilioException:
    """What twilio-python raises when a page of a listing comes back non-200."""
    body = json.dumps({"code": 20500, "message": "fake", "status": status})
    return TwilioException("Unable to fetch page", Response(status, body))


@pytest.mark.parametrize("raised, transient", [
    (requests.ConnectionError("refused"), True),
    (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"), True),
    (requests.ReadTimeout("slow"), True),
    (requests.ConnectTimeout("slow"), True),
    (TwilioRestException(429, "/v1/x", "rate"), True),
    (TwilioRestException(503, "/v1/x", "down"), True),
    (page_error(503), True),
    (page_error(429), True),
    (TwilioRestException(400, "/v1/x", "bad", code=21610), False),
    (page_error(404), False),
    (json.JSONDecodeError("Expecting value", "<html>", 0), False),
    (ValueError("not Twilio's JSON"), False),
    (TwilioException("Credentials are required"), False),
    (requests.exceptions.InvalidURL("no host"), False),
    (requests.TooManyRedirects("loop"), False),
], ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value))
def test_failures_are_classified(raised, transient):
    """Each kind of failure becomes an ApiError that says whether a retry can help."""
    with pytest.raises(ApiError) as caught, _api_errors():
        raise raised
    assert caught.value.transient is transient


def test_status_and_code_of_a_page_error_are_kept():
    """A failed listing keeps the HTTP status and Twilio's code for the log."""
    with pytest.raises(ApiError) as caught, _api_errors():
        raise page_error(503)
    assert (caught.value.status, caught.value.code) == (503, 20500)
