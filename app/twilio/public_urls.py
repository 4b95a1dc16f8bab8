"""Media URLs reach public addresses only: the server must not fetch from its own network.

A rules file's `media = "http://..."` is fetched by the server (app/twilio/media.py),
so a URL on loopback, a private range or a cloud's metadata address (169.254.169.254)
would read from inside the network the server runs in and send it on to customers.

- At load (`host_problem`): `localhost` and `*.localhost`, and an IP literal that is not
  a public address, in any spelling a resolver takes (127.1, 2130706433, 0x7f000001,
  [::ffff:127.0.0.1]). A host name is not resolved then: DNS answers change, and a
  server must not fail to start because a resolver is down.
- When fetched (`public_session`): the address each connection actually reached, after
  DNS and for every redirect, is checked before a byte of the request is sent, so a name
  that resolves (or is re-bound) to a private address is refused too. Proxies from the
  environment are not used: the address checked is the one the request goes to.

A refused address is a MediaError that is not transient: retrying reaches it again.
"""

from __future__ import annotations

import ipaddress
import re
import socket

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import ApiError

# IPv4 as inet_aton reads it: one to four parts, each decimal, octal or 0x-hex.
_LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: Address) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, reserved,
    unspecified or multicast (an IPv4-mapped IPv6 address is judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def host_problem(host: str) -> str | None:
    """Why a URL's host is refused at load (None: not refused)."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return f"{host} is not a public address (loopback)"
    address = _literal(name)
    if address is None or is_public(address):
        return None
    spelt = host if str(address) == name else f"{host} ({address})"
    return f"{spelt} is not a public address{_kind(address)}"


def _kind(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private",
                 "reserved"):
        if getattr(address, f"is_{kind}"):
            return f" ({kind.replace('_', '-')})"
    return ""


def _literal(name: str) -> Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


class PrivateAddressError(ApiError):
    """A connection reached an address that is not public (never transient)."""

    def __init__(self, host: str, address: str):
        super().__init__(f"{host} reaches {address}, not a public address", transient=False)


def _check_peer(sock: socket.socket, host: str) -> socket.socket:
    address = sock.getpeername()[0]
    if not is_public(ipaddress.ip_address(address.split("%")[0])):
        sock.close()
        raise PrivateAddressError(host, address)
    return sock


class _PublicHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _check_peer(super()._new_conn(), self.host)


class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:  # before the TLS handshake
        return _check_peer(super()._new_conn(), self.host)


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def public_session() -> requests.Session:
    """A session whose connections reach public addresses only (PrivateAddressError)."""
    session = requests.Session()
    session.trust_env = False  # no proxy: the peer checked is the host asked for
    session.mount("http://", _PublicAdapter())
    session.mount("https://", _PublicAdapter())
    return session
