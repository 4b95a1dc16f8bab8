"""The fake API's webhook configuration, account-wide and per Conversation Service,
shaped as Twilio's API reference defines them.

    GET/POST /v1/Configuration/Webhooks
    GET/POST /v1/Services/{ChatServiceSid}/Configuration/Webhooks

The services themselves (GET /v1/Services) are tests/support/fake_resources.py's.
An update takes form parameters (`PreWebhookUrl`, `PostWebhookUrl`, `Method`, `Target`
account-wide only, `Filters` repeated, replacing the whole list) and changes only the
ones sent, as Twilio does; a bad Method, Target or filter name is refused with 400.
Tests set the state directly (`config.account[...]`, `config.add_service(...)`,
`config.service(sid)[...]`) and read `config.updates` to see what was sent.
https://www.twilio.com/docs/conversations/api/webhook-configuration-resource
https://www.twilio.com/docs/conversations/api/per-service-webhook-resource
"""

from __future__ import annotations

import secrets

from werkzeug.wrappers import Request, Response

from tests.support import fake_conversations as fake

# The filters Twilio accepts (its API reference's list).
FILTERS = frozenset({
    "onMessageAdded", "onMessageUpdated", "onMessageRemoved", "onMessageAdd",
    "onMessageUpdate", "onMessageRemove", "onConversationUpdated", "onConversationRemoved",
    "onConversationAdd", "onConversationAdded", "onConversationRemove", "onConversationUpdate",
    "onConversationStateUpdated", "onParticipantAdded", "onParticipantUpdated",
    "onParticipantRemoved", "onParticipantAdd", "onParticipantRemove", "onParticipantUpdate",
    "onDeliveryUpdated", "onUserAdded", "onUserUpdate", "onUserUpdated",
})
_FIELDS = {"PreWebhookUrl": "pre_webhook_url", "PostWebhookUrl": "post_webhook_url",
           "Method": "method"}


def install(api) -> WebhookConfig:
    """Serve the webhook configuration from `api` and return its state."""
    config = WebhookConfig(api)
    api.routes.append(config)
    return config


class WebhookConfig:
    def __init__(self, api) -> None:
        self.api = api
        self.account = _blank() | {"target": "webhook"}
        self.per_service: dict[str, dict] = {}  # SID -> its webhooks, once read or set
        self.updates: list[tuple[str, dict]] = []  # (scope, the form as lists), in order

    def add_service(self, friendly_name: str, **webhooks) -> str:
        """Create a Conversation Service (in the fake's services list) with these webhooks."""
        sid = "IS" + secrets.token_hex(16)
        self.api.resources.services[sid] = friendly_name
        self.service(sid).update(webhooks)
        return sid

    def service(self, sid: str) -> dict:
        """A service's webhooks: none of its own until set."""
        return self.per_service.setdefault(sid, _blank())

    def __call__(self, api, request: Request, parts: list[str]) -> Response | None:
        if parts == ["v1", "Configuration", "Webhooks"]:
            return self._account(api, request)
        if len(parts) == 5 and parts[:2] == ["v1", "Services"] \
                and parts[3:] == ["Configuration", "Webhooks"]:
            return self._per_service(api, request, parts[2])
        return None

    def _account(self, api, request: Request) -> Response:
        if request.method == "POST":
            error = _update(self.account, request, target=True)
            if error:
                return error
            self.updates.append(("account", request.form.to_dict(flat=False)))
        return fake._json(200, {**self.account, "account_sid": api.account_sid,
                                "url": f"{api.url}/v1/Configuration/Webhooks"})

    def _per_service(self, api, request: Request, sid: str) -> Response:
        if sid not in api.resources.services:
            return fake._error(404, 20404, "The requested resource was not found")
        webhooks = self.service(sid)
        if request.method == "POST":
            error = _update(webhooks, request, target=False)
            if error:
                return error
            self.updates.append((sid, request.form.to_dict(flat=False)))
        return fake._json(200, {
            **webhooks, "account_sid": api.account_sid, "chat_service_sid": sid,
            "url": f"{api.url}/v1/Services/{sid}/Configuration/Webhooks"})


def _blank() -> dict:
    return {"pre_webhook_url": None, "post_webhook_url": None, "method": "POST", "filters": []}


def _update(state: dict, request: Request, *, target: bool) -> Response | None:
    """Apply the parameters sent to `state`, or answer 400 as Twilio would."""
    form = request.form
    method = form.get("Method")
    if method is not None and method.upper() not in ("GET", "POST"):
        return fake._error(400, 20001, f"Invalid Method: {method}")
    if target and form.get("Target") not in (None, "webhook", "flex"):
        return fake._error(400, 20001, f"Invalid Target: {form.get('Target')}")
    filters = form.getlist("Filters")
    unknown = [name for name in filters if name not in FILTERS]
    if unknown:
        return fake._error(400, 20001, f"Invalid filter: {unknown[0]}")
    for name, key in _FIELDS.items():
        if name in form:
            state[key] = form[name].upper() if name == "Method" else form[name] or None
    if "Filters" in form:
        state["filters"] = filters
    if target and "Target" in form:
        state["target"] = form["Target"]
    return None
