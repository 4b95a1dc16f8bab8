"""The webhook body: read once, within WEBHOOK_MAX_BYTES, and parsed strictly as a form.

Twilio posts application/x-www-form-urlencoded in UTF-8. A body that is not exactly that
was not written by Twilio, and a lenient parser would keep `%ZZ` as text or replace bad
bytes, so what is signed, stored and answered would not be what was sent: refuse it.
The one parsed MultiDict feeds both the signature check and the Event.
https://url.spec.whatwg.org/#application/x-www-form-urlencoded
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.wsgi import get_content_length, get_input_stream

from ..errors import BadRequest, TooLarge

_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def read_body(request: Request, limit: int) -> bytes:
    """Return the whole body, or raise TooLarge if it is over `limit` bytes.

    A chunked body has no Content-Length to check up front, and werkzeug's stream stops
    quietly at the limit (the rest looked like a bad signature): read one byte past it.
    """
    length = get_content_length(request.environ)
    if length is not None and length > limit:
        raise TooLarge(f"body of {length} bytes is over WEBHOOK_MAX_BYTES ({limit})")
    # Unwrapped: the server ends a chunked stream (wsgi.input_terminated) or it is cut at
    # Content-Length; without either, werkzeug gives an empty stream.
    stream = get_input_stream(request.environ, max_content_length=None)
    parts, size = [], 0
    while size <= limit:
        part = stream.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise TooLarge(f"chunked body is over WEBHOOK_MAX_BYTES ({limit})")
    return b"".join(parts)


def parse(body: bytes) -> MultiDict:
    """Parse a form body into every (name, value) pair, or raise BadRequest."""
    bad = _BAD_ESCAPE.search(body)
    if bad:
        raise BadRequest(f"malformed form body: bad percent-escape at byte {bad.start()} "
                         "('%' must be followed by two hex digits)")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("malformed form body: not UTF-8 (raw or percent-decoded)") from None
    return MultiDict(pairs)
