"""(B) The naive design: validate, call the Conversations API inside the request, then answer."""

import os

from flask import Flask, request
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

app = Flask(__name__)
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
PUBLIC = os.environ["PUBLIC_BASE_URL"]
client = Client(os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"],
                http_client=TwilioHttpClient(timeout=10))
client.conversations.base_url = os.environ["TWILIO_API_BASE_URL"]


@app.post("/webhooks/conversations")
def webhook():
    url = PUBLIC + request.environ.get("RAW_URI", request.path)
    if not validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", "")):
        return "", 403
    if request.form.get("Author") != "support-bot":
        client.conversations.v1.conversations(request.form["ConversationSid"]).messages.create(
            author="support-bot", body="Thanks for your message!",
            x_twilio_webhook_enabled="true")
    return "", 200


@app.get("/healthz")
def healthz():
    return "ok"
