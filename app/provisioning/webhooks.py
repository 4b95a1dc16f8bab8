"""Where Twilio sends the account's Conversations webhooks: read it, compare, point it here.

Two scopes are handled (per-conversation webhooks are left alone):

    account-wide   /v1/Configuration/Webhooks                 (also has Target)
    per service    /v1/Services/{IS}/Configuration/Webhooks   (replaces the account-wide
                   set for that service's conversations once it has URLs of its own)

One list of Filters serves pre- and post-events alike, and an update replaces the whole
list: `desired()` keeps every filter already set and adds those this server handles.
https://www.twilio.com/docs/conversations/api/webhook-configuration-resource
https://www.twilio.com/docs/conversations/api/per-service-webhook-resource
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from twilio.rest import Client

from ..handlers import build_router
from ..pipeline.events import POST_EVENTS, PRE_EVENTS
from ..twilio.errors import ApiError, api_errors
from .listing import diff_lines

WEBHOOK_PATH = "/webhooks/conversations"
PRE_PATH = WEBHOOK_PATH + "/pre"
ACCOUNT = "account-wide"


@dataclass(frozen=True)
class Hooks:
    """One scope's webhook configuration, as Twilio reports it."""

    scope: str  # ACCOUNT, or the Conversation Service's SID
    post_url: str | None
    pre_url: str | None
    method: str | None
    filters: tuple[str, ...]
    target: str | None = None  # account-wide only: webhook or flex
    name: str | None = None  # the service's friendly name

    @property
    def label(self) -> str:
        if self.scope == ACCOUNT:
            return ACCOUNT
        return f"service {self.scope}" + (f" ({self.name})" if self.name else "")

    @property
    def has_own_urls(self) -> bool:
        """A service with URLs of its own gets only its own webhooks, not the account's."""
        return bool(self.post_url or self.pre_url)

    def missing(self, needed: tuple[str, ...]) -> list[str]:
        return [name for name in needed if name not in self.filters]


# What `show` and the before/after listing print, in order.
FIELDS = (("post_url", "post-event URL"), ("pre_url", "pre-event URL"),
          ("method", "method"), ("filters", "filters"), ("target", "target"))


def needed_filters(*, pre: bool = False) -> tuple[str, ...]:
    """The event types this server has handlers for (post-events; with `pre`, pre-events
    too): the filters its webhook scope must have."""
    router = build_router()
    kinds = POST_EVENTS | (PRE_EVENTS if pre else frozenset())
    return tuple(name for name in sorted(kinds) if router.handles(name))


def fetch_account(client: Client) -> Hooks:
    with api_errors("reading the account-wide webhook configuration"):
        hooks = client.conversations.v1.configuration.webhooks().fetch()
    return _hooks(ACCOUNT, hooks, target=hooks.target)


def fetch_service(client: Client, service_sid: str, name: str | None = None) -> Hooks:
    with api_errors(f"reading the webhook configuration of service {service_sid}"):
        hooks = client.conversations.v1.services(service_sid).configuration.webhooks().fetch()
    return _hooks(service_sid, hooks, name=name)


def list_services(client: Client) -> list[tuple[str, str | None]]:
    """(SID, friendly name) of every Conversation Service of the account."""
    with api_errors("listing the Conversation Services"):
        return [(s.sid, s.friendly_name)
                for s in client.conversations.v1.services.list(page_size=100)]


def read_all(client: Client) -> list[Hooks]:
    """The account-wide configuration, then each service's."""
    return [fetch_account(client)] + [fetch_service(client, sid, name)
                                      for sid, name in list_services(client)]


def fetch(client: Client, scope: str) -> Hooks:
    if scope == ACCOUNT:
        return fetch_account(client)
    names = dict(list_services(client))
    if scope not in names:
        raise ApiError(f"no Conversation Service {scope} in this account "
                       f"(it has: {', '.join(names) or 'none'})", transient=False)
    return fetch_service(client, scope, names[scope])


def desired(current: Hooks, *, post_url: str, pre_url: str | None,
            filters: tuple[str, ...]) -> Hooks:
    """`current` pointed here: our post-event URL (and pre-event URL when given), POST,
    the filters already set plus `filters`, and (account-wide) target webhook."""
    return dataclasses.replace(
        current, post_url=post_url, pre_url=pre_url or current.pre_url, method="POST",
        filters=current.filters + tuple(f for f in filters if f not in current.filters),
        target="webhook" if current.scope == ACCOUNT else current.target)


def changes(before: Hooks, after: Hooks) -> dict[str, object]:
    """The fields that differ, with their new values (filters compared as sets)."""
    differ = {}
    for name, _ in FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        if name == "filters" and set(old) == set(new):
            continue
        if name == "method" and (old or "").upper() == (new or "").upper():
            continue
        if old != new:
            differ[name] = new
    return differ


def update(client: Client, current: Hooks, wanted: Hooks) -> Hooks:
    """Send only what changes; return the configuration as Twilio answers it."""
    differ = changes(current, wanted)
    args = {"post_webhook_url": differ.get("post_url"), "pre_webhook_url": differ.get("pre_url"),
            "method": differ.get("method"),
            "filters": list(differ["filters"]) if "filters" in differ else None,
            "target": differ.get("target")}
    args = {name: value for name, value in args.items() if value is not None}
    with api_errors(f"updating the {current.label} webhook configuration"):
        if current.scope == ACCOUNT:
            hooks = client.conversations.v1.configuration.webhooks().update(**args)
            return _hooks(ACCOUNT, hooks, target=hooks.target)
        args.pop("target", None)
        hooks = (client.conversations.v1.services(current.scope).configuration.webhooks()
                 .update(**args))
        return _hooks(current.scope, hooks, name=current.name)


def describe(hooks: Hooks) -> list[str]:
    """The configuration, one field a line."""
    return [f"    {title:<15} {_show(getattr(hooks, name))}" for name, title in FIELDS
            if not (name == "target" and hooks.scope != ACCOUNT)]


def diff(before: Hooks, after: Hooks) -> list[str]:
    """A diff-like listing: `-` the old value, `+` the new one, the rest unchanged."""
    differ = changes(before, after)
    return diff_lines(((title, _show(getattr(before, name)), _show(getattr(after, name)),
                        name in differ)
                       for name, title in FIELDS
                       if not (name == "target" and before.scope != ACCOUNT)), 15)


def origin(url: str) -> str:
    """scheme://host[:port] in lower case, without the scheme's default port."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    if ":" in host:
        host = f"[{host}]"
    if port and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def serves(url: str | None, public_base_urls: tuple[str, ...], path: str) -> bool:
    """Whether `url` is `path` on one of this server's origins."""
    if not url:
        return False
    origins = {origin(base) for base in public_base_urls}
    return origin(url) in origins and urlsplit(url).path.rstrip("/") == path


def problem(hooks: Hooks, needed: tuple[str, ...]) -> str | None:
    """What keeps a scope that posts here from serving this server (None: nothing)."""
    if hooks.missing(needed):
        return f"without the filters {', '.join(hooks.missing(needed))}"
    if (hooks.method or "").upper() != "POST":
        return f"with method {hooks.method} (POST is needed)"
    if hooks.scope == ACCOUNT and hooks.target not in (None, "webhook"):
        return f"with target {hooks.target!r} (webhook is needed)"
    return None


def url_error(url: str) -> str | None:
    """Why `url` is no URL Twilio could call at all (None: it is one). Not overridable."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"{url!r} has a malformed host or port"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL"
    if any(c.isspace() for c in url):
        return f"{url!r} has a space in it (write it %20, or leave it out)"
    return None


def url_problems(url: str, public_base_urls: tuple[str, ...]) -> list[str]:
    """Why Twilio's webhooks to a well-formed `url` would not reach this server, or should
    not go there (--force overrides these; see `url_error` for those it does not)."""
    parts = urlsplit(url)
    problems = []
    if parts.scheme != "https":
        problems.append(f"{url} is not https: Twilio would post customers' messages "
                        "unencrypted")
    unreachable = _unreachable(parts.hostname)
    if unreachable:
        problems.append(f"{parts.hostname} is {unreachable}: Twilio cannot reach it")
    if not public_base_urls:
        problems.append("PUBLIC_BASE_URL is not set: the server serves loopback origins "
                        "only and would answer 403 to every webhook")
    elif origin(url) not in {origin(base) for base in public_base_urls}:
        problems.append(f"{origin(url)} is not in PUBLIC_BASE_URL "
                        f"({', '.join(public_base_urls)}): the server would answer 403 to "
                        "every webhook; add it there first")
    return problems


def _unreachable(host: str) -> str | None:
    """What kind of address Twilio cannot reach `host` at (None: a public one)."""
    if host == "localhost" or host.endswith(".localhost"):
        return "this machine (localhost)"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback:
        return "a loopback address (this machine)"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private network address"
    return None


def _show(value) -> str:
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(none)"
    return value or "(none)"


def _hooks(scope: str, hooks, *, target: str | None = None, name: str | None = None) -> Hooks:
    return Hooks(scope=scope, post_url=hooks.post_webhook_url or None,
                 pre_url=hooks.pre_webhook_url or None, method=hooks.method,
                 filters=tuple(hooks.filters or ()), target=target, name=name)
