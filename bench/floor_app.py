"""(A) The floor: validate X-Twilio-Signature, answer 204. The least any server must do."""

import os

from flask import Flask, request
from twilio.request_validator import RequestValidator

app = Flask(__name__)
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
PUBLIC = os.environ["PUBLIC_BASE_URL"]


@app.post("/webhooks/conversations")
def webhook():
    url = PUBLIC + request.environ.get("RAW_URI", request.path)
    if not validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", "")):
        return "", 403
    return "", 204


@app.get("/healthz")
def healthz():
    return "ok"
