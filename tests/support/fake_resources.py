"""The fake API's Conversations resources beyond messages: conversations, participants,
address configurations, services, and the Media Content Service's uploads.

Installed by FakeConversationsAPI (consulted before its own routes), shaped like Twilio's
JSON and taking the parameter names of Twilio's API reference:
https://www.twilio.com/docs/conversations/api/conversation-resource
https://www.twilio.com/docs/conversations/api/conversation-participant-resource
https://www.twilio.com/docs/conversations/api/address-configuration-resource
https://www.twilio.com/docs/conversations/api/media-resource (mcs.us1.twilio.com)

Conversations stay implicit as before (any SID used exists, `active`); one created or
updated here has its own state, name and attributes. Checks Twilio makes and the bot's
commands should never provoke are answered with Twilio's errors, so the commands' error
output can be tested: a participant with both Identity and a binding, or a binding
without its proxy (400), an SMS binding that exists already in an open conversation
(50416), an unknown SID (20404).
"""

from __future__ import annotations

import json
import secrets
import threading

from werkzeug.wrappers import Request, Response

from tests.support.fake_conversations import _error, _json, _now, _page

NOT_FOUND = (404, 20404, "The requested resource was not found")


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class Resources:
    """The resources' state and their routes: `(api, request, parts) -> Response | None`."""

    def __init__(self, api):
        self.api = api
        self.default_service_sid = sid("IS")
        self.services = {self.default_service_sid: "Default Conversations Service"}
        self.conversations: dict[str, dict] = {}  # created or updated here
        self.participants: dict[str, list[dict]] = {}
        self.addresses: dict[str, dict] = {}  # by IG sid
        self.media: dict[str, dict] = {}  # by ME sid, with the uploaded bytes
        self._lock = threading.Lock()
        api.routes.append(self)

    def __call__(self, api, request: Request, parts: list[str]) -> Response | None:
        method = request.method
        if parts[:3] == ["v1", "Configuration", "Addresses"]:
            return self._addresses(request, parts[3:])
        if parts == ["v1", "Configuration"] and method == "GET":
            return _json(200, {"account_sid": api.account_sid,
                               "default_chat_service_sid": self.default_service_sid,
                               "default_messaging_service_sid": None,
                               "default_inactive_timer": None, "default_closed_timer": None,
                               "url": f"{api.url}/v1/Configuration", "links": {}})
        if parts == ["v1", "Services"] and method == "GET":
            items = [{"sid": s, "account_sid": api.account_sid, "friendly_name": name,
                      "date_created": _now(), "date_updated": _now(), "links": {},
                      "url": f"{api.url}/v1/Services/{s}"} for s, name in self.services.items()]
            return _page(request, "services", items)
        if len(parts) == 4 and parts[:2] == ["v1", "Services"] and parts[3] == "Media":
            return self._upload(request, parts[2]) if method == "POST" else None
        if parts[:2] != ["v1", "Conversations"]:
            return None
        if len(parts) == 2:
            return self._create(request) if method == "POST" else self._list(request)
        if not self.api.has_conversation(parts[2]):
            return None  # the API's 404
        if len(parts) == 3:
            return self._conversation(request, parts[2])
        if len(parts) >= 4 and parts[3] == "Participants":
            return self._participants(request, parts[2], parts[4:])
        return None

    # -- conversations --------------------------------------------------------------

    def conversation(self, conversation_sid: str) -> dict | None:
        """The conversation's JSON (one the fake was told of is active and nameless);
        None when it does not exist."""
        found = self.conversations.get(conversation_sid)
        if found is not None:
            return found
        if not self.api.has_conversation(conversation_sid):
            return None
        return self._shape(conversation_sid, {"state": "active"})

    def _shape(self, conversation_sid: str, fields: dict) -> dict:
        url = f"{self.api.url}/v1/Conversations/{conversation_sid}"
        shaped = {
            "sid": conversation_sid, "account_sid": self.api.account_sid,
            "chat_service_sid": self.default_service_sid, "messaging_service_sid": None,
            "friendly_name": None, "unique_name": None, "attributes": "{}",
            "state": "active", "date_created": _now(), "date_updated": _now(),
            "timers": {}, "bindings": None, "url": url,
            "links": {"participants": f"{url}/Participants", "messages": f"{url}/Messages",
                      "webhooks": f"{url}/Webhooks"},
        }
        shaped.update(fields)
        return shaped

    def _create(self, request: Request) -> Response:
        form = request.form
        conversation_sid = sid("CH")
        created = self._shape(conversation_sid, {
            "friendly_name": form.get("FriendlyName"), "unique_name": form.get("UniqueName"),
            "attributes": form.get("Attributes", "{}"), "state": form.get("State", "active")})
        with self._lock:
            self.conversations[conversation_sid] = created
            self.api.messages.setdefault(conversation_sid, [])
        return _json(201, created)

    def _list(self, request: Request) -> Response:
        with self._lock:
            sids = list(dict.fromkeys([*self.api.messages, *self.conversations]))
        items = [c for c in map(self.conversation, reversed(sids)) if c is not None]
        state = request.args.get("State")
        if state:
            items = [c for c in items if c["state"] == state]
        return _page(request, "conversations", items)

    def _conversation(self, request: Request, conversation_sid: str) -> Response:
        if request.method == "GET":
            return _json(200, self.conversation(conversation_sid))
        if request.method == "DELETE":
            with self._lock:
                self.conversations.pop(conversation_sid, None)
                self.participants.pop(conversation_sid, None)
                self.api.messages.pop(conversation_sid, None)
            return Response(status=204)
        form = request.form
        with self._lock:
            current = dict(self.conversation(conversation_sid))
            for name, key in (("FriendlyName", "friendly_name"), ("State", "state"),
                              ("Attributes", "attributes"), ("UniqueName", "unique_name")):
                if name in form:
                    current[key] = form[name]
            current["date_updated"] = _now()
            self.conversations[conversation_sid] = current
        return _json(200, current)

    # -- participants ---------------------------------------------------------------

    def _participants(self, request: Request, conversation_sid: str, rest: list[str]):
        with self._lock:
            members = self.participants.setdefault(conversation_sid, [])
        if not rest:
            if request.method == "POST":
                return self._add_participant(request, conversation_sid, members)
            return _page(request, "participants", list(members))
        found = next((p for p in members if rest[0] in (p["sid"], p["identity"])), None)
        if found is None:
            return _error(*NOT_FOUND)
        if request.method == "DELETE":
            with self._lock:
                members.remove(found)
            return Response(status=204)
        return _json(200, found)

    def _add_participant(self, request: Request, conversation_sid: str,
                         members: list[dict]) -> Response:
        form = request.form
        identity = form.get("Identity")
        address = form.get("MessagingBinding.Address")
        proxy = form.get("MessagingBinding.ProxyAddress")
        if bool(identity) == bool(address):
            return _error(400, 20001, "Give either Identity or MessagingBinding.Address")
        if address and not proxy:
            return _error(400, 20001, "MessagingBinding.ProxyAddress is required")
        with self._lock:
            for other_sid, others in self.participants.items():
                if self.conversation(other_sid)["state"] == "closed":
                    continue
                for other in others:
                    binding = other["messaging_binding"] or {}
                    if address and binding.get("address") == address \
                            and binding.get("proxy_address") == proxy:
                        return _error(409, 50416, "A binding for this participant and proxy "
                                      f"address already exists in Conversation {other_sid}")
            if identity and any(p["identity"] == identity for p in members):
                return _error(409, 50433, "Participant already exists")
            kind = "whatsapp" if (address or "").startswith("whatsapp:") else "sms"
            participant_sid = sid("MB")
            participant = {
                "sid": participant_sid, "account_sid": self.api.account_sid,
                "conversation_sid": conversation_sid, "identity": identity,
                "attributes": form.get("Attributes", "{}"), "role_sid": sid("RL"),
                "messaging_binding": ({"type": kind, "address": address,
                                       "proxy_address": proxy} if address else None),
                "date_created": _now(), "date_updated": _now(),
                "last_read_message_index": None, "last_read_timestamp": None,
                "url": f"{self.api.url}/v1/Conversations/{conversation_sid}/Participants/"
                       f"{participant_sid}",
                "links": {},
            }
            members.append(participant)
        return _json(201, participant)

    # -- address configurations -----------------------------------------------------

    def address(self, address: str) -> dict | None:
        return next((a for a in self.addresses.values() if a["address"] == address), None)

    def _addresses(self, request: Request, rest: list[str]) -> Response:
        if not rest:
            if request.method == "POST":
                return self._save_address(request.form, None)
            items = list(self.addresses.values())
            if request.args.get("Type"):
                items = [a for a in items if a["type"] == request.args["Type"]]
            return _page(request, "address_configurations", items)
        found = self.addresses.get(rest[0]) or self.address(rest[0])
        if found is None:
            return _error(*NOT_FOUND)
        if request.method == "DELETE":
            with self._lock:
                del self.addresses[found["sid"]]
            return Response(status=204)
        if request.method == "POST":
            return self._save_address(request.form, found)
        return _json(200, found)

    def _save_address(self, form, current: dict | None) -> Response:
        if current is None:
            if not form.get("Type") or not form.get("Address"):
                return _error(400, 20001, "Missing required parameter Type or Address")
            if self.address(form["Address"]):
                return _error(409, 50353, "Address configuration already exists")
        auto = dict((current or {}).get("auto_creation") or {"enabled": False})
        fields = {"Enabled": "enabled", "Type": "type",
                  "ConversationServiceSid": "conversation_service_sid",
                  "WebhookUrl": "webhook_url", "WebhookMethod": "webhook_method",
                  "StudioFlowSid": "studio_flow_sid"}
        for name, key in fields.items():
            value = form.get(f"AutoCreation.{name}")
            if value is not None:
                auto[key] = (value == "true") if name == "Enabled" else value
        if "AutoCreation.WebhookFilters" in form:
            auto["webhook_filters"] = form.getlist("AutoCreation.WebhookFilters")
        if auto.get("webhook_method"):
            auto["webhook_method"] = auto["webhook_method"].upper()
        if auto.get("type") == "webhook" and not auto.get("webhook_url"):
            return _error(400, 50350, "AutoCreation.WebhookUrl is required for type webhook")
        if auto.get("type") != "webhook":
            for key in ("webhook_url", "webhook_method", "webhook_filters"):
                auto.pop(key, None)
        config_sid = current["sid"] if current else sid("IG")
        saved = dict(current or {
            "sid": config_sid, "account_sid": self.api.account_sid, "type": form["Type"],
            "address": form["Address"], "address_country": None, "date_created": _now(),
            "url": f"{self.api.url}/v1/Configuration/Addresses/{config_sid}"})
        saved.update(friendly_name=form.get("FriendlyName", saved.get("friendly_name")),
                     auto_creation=auto, date_updated=_now())
        with self._lock:
            self.addresses[config_sid] = saved
        return _json(200 if current else 201, saved)

    # -- Media Content Service ------------------------------------------------------

    def _upload(self, request: Request, service_sid: str) -> Response:
        if service_sid not in self.services:
            return _error(404, 20404, f"Service {service_sid} not found")
        content = request.get_data()
        content_type = request.headers.get("Content-Type") or "application/octet-stream"
        media_sid = sid("ME")
        record = {"sid": media_sid, "account_sid": self.api.account_sid,
                  "service_sid": service_sid, "size": len(content),
                  "content_type": content_type, "filename": None,
                  "date_created": _now(), "date_updated": _now(), "author": "system",
                  "channel_sid": None, "message_sid": None, "category": "media",
                  "links": {"content": f"/v1/Services/{service_sid}/Media/{media_sid}/Content"},
                  "url": f"/v1/Services/{service_sid}/Media/{media_sid}"}
        with self._lock:
            self.media[media_sid] = {**record, "content": content}
        return Response(json.dumps(record), status=201, mimetype="application/json")
