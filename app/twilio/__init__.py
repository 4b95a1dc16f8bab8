"""Talking to Twilio, below every user of it: the Conversations clients and what their
failures mean.

    interface.py      the clients' Protocols (blocking and async twins) and Message
    client.py         the blocking client (live, dry-run) and twilio-python's REST client
    async_client.py   the sender's async client (live, dry-run)
    errors.py         one ApiError; every SDK or HTTP failure translated into it
    error_codes.py    what Twilio's error codes mean and what usually fixes them
    marker.py         the attributes that mark our replies
    media.py          what Twilio takes as media (size, types), a file or URL read
    public_urls.py    media URLs fetched from public addresses only

Nothing here imports the rest of the app but formats.py (tests/test_layers.py).
"""
