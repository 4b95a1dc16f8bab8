"""Reply media: a file or URL from the rules file, uploaded once to Twilio, sent by MediaSid.

The Conversations message API takes a `MediaSid` (ME...), not a URL: the file goes first
to the Media Content Service (MCS), `POST https://mcs.us1.twilio.com/v1/Services/{IS}/Media`
with the raw bytes and their Content-Type, basic auth with the account's SID and token
(https://www.twilio.com/docs/conversations/api/media-resource). With TWILIO_API_BASE_URL
set, MCS is reached there too (the local fake).

    library = MediaLibrary(db, settings.twilio)
    library.check(sources)       # at start-up: the problems, one line each
    media_sid = library.resolve("/srv/bot/media/opening-hours.png")   # sync, thread-safe

An upload is keyed by the service and the SHA-256 of the content (table media_uploads),
so each content is uploaded once per service, whichever process asks first; two
processes racing both upload, but only one row is stored (the primary key) and both
return its MediaSid. Each process also remembers what it resolved.

Limits (checked at start-up for files, at first use for URLs):
- 5 MB per file: Twilio's limit for MMS (the whole message) and for WhatsApp images
  (https://www.twilio.com/docs/messaging/guides/accepted-mime-types, error 11751);
- the content types both SMS/MMS and WhatsApp take (CONTENT_TYPES; GIF only on MMS),
  named by the file's extension (or the server's Content-Type) and confirmed by the
  content's first bytes (SIGNATURES): a text file named .png is refused, not uploaded
  as image/png;
- a URL reaches public addresses only (public_urls.py): not loopback, private ranges,
  link-local (cloud metadata) and the like. (Which files a rules file may name, its
  folder and media_dirs, is the rules file's business: app/autoreply/rules.py.)
A URL is fetched at first use, not at start-up: a web server must not fail to boot
because another host is down, and a URL that breaks later would fail the same way.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import bindparam, select

from config import TwilioSettings

from .. import formats
from ..store.database import Database, dialect_insert
from ..store.models import MEDIA_LENGTH, MediaUpload, utcnow
from . import public_urls
from .client import ApiError

log = logging.getLogger(__name__)

MAX_BYTES = 5_000_000
CONTENT_TYPES = frozenset({
    "image/jpeg", "image/png", "image/gif", "application/pdf", "video/mp4",
    "audio/mpeg", "audio/ogg", "audio/amr", "text/vcard", "text/x-vcard",
})
# How each type starts: (offset, bytes). MP4 is an ISO box "ftyp" at offset 4 (audio-only
# brands excepted below); MP3 starts with an ID3 tag or an MPEG frame's 11 sync bits.
SIGNATURES = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (4, b"ftyp", "video/mp4"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"#!AMR", "audio/amr"),
    (0, b"BEGIN:VCARD", "text/vcard"),
)
_AUDIO_MP4_BRANDS = (b"M4A ", b"M4B ", b"M4P ")
_SAME_TYPE = {"text/x-vcard": "text/vcard"}
MCS_BASE_URL = "https://mcs.us1.twilio.com"
CONVERSATIONS_BASE_URL = "https://conversations.twilio.com"
MEDIA = MediaUpload.__table__
_FIND = select(MEDIA.c.media_sid).where(MEDIA.c.key == bindparam("key"))


class MediaError(ApiError):
    """Media that cannot be sent (too large, a type Twilio refuses, a file or URL that
    cannot be read), or an upload that failed. `transient`: worth retrying later."""


@dataclass(frozen=True)
class Content:
    """One medium's bytes, read or downloaded."""

    source: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def check_source(source: str) -> str | None:
    """What is wrong with a configured medium (None: nothing seen). A file is read and
    checked whole; a URL for its shape and host (it is fetched at first use)."""
    if len(source) > MEDIA_LENGTH:
        return f"longer than {MEDIA_LENGTH} characters"
    if is_url(source):
        try:
            host = urlsplit(source).hostname
        except ValueError:
            host = None
        if not host:
            return f"not a URL: {source!r}"
        problem = public_urls.host_problem(host)
        return f"{source}: {problem}" if problem else None
    if "://" in source:
        return f"only http(s) URLs or file paths, got {source!r}"
    try:
        read_file(source)
    except MediaError as exc:
        return exc.message
    return None


def read_file(source: str) -> Content:
    path = Path(source)
    if not path.is_file():
        raise MediaError(f"no such file {source!r}", transient=False)
    size = path.stat().st_size
    _check_size(size, source)
    content_type = _guess_type(path.name)
    _check_type(content_type, source)
    data = path.read_bytes()
    _check_content(data, content_type, source, "its name says")
    return Content(source, content_type, data)


def fetch_url(source: str, timeout: float, session: requests.Session | None = None) -> Content:
    """Download a URL (at most MAX_BYTES) with `session` (default: public addresses only);
    connection problems, 429 and 5xx are transient."""
    session = session or public_urls.public_session()
    try:
        with session.get(source, timeout=timeout, stream=True) as response:
            if response.status_code != 200:
                transient = response.status_code == 429 or response.status_code >= 500
                raise MediaError(f"{source} answered HTTP {response.status_code}",
                                 transient=transient, status=response.status_code)
            _check_size(int(response.headers.get("Content-Length") or 0), source)
            data = b""
            for chunk in response.iter_content(64 * 1024):
                data += chunk
                _check_size(len(data), source)
            header = (response.headers.get("Content-Type") or "").split(";")[0].strip()
    except public_urls.PrivateAddressError as exc:
        raise MediaError(f"cannot fetch {source}: {exc.message}", transient=False) from None
    except requests.RequestException as exc:
        raise MediaError(f"cannot fetch {source}: {type(exc).__name__}: {exc}",
                         transient=True) from exc
    content_type = header.lower() or _guess_type(urlsplit(source).path)
    _check_type(content_type, source)
    _check_content(data, content_type, source, "the server says")
    return Content(source, content_type, data)


def sniff(data: bytes) -> str | None:
    """The content type the first bytes show (SIGNATURES), or None."""
    start = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")  # a vCard may start with a BOM
    if start[:11].upper() == b"BEGIN:VCARD":
        return "text/vcard"
    if len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and data[1] != 0xFF:
        return "audio/mpeg"  # an MPEG audio frame without an ID3 tag
    for offset, signature, content_type in SIGNATURES:
        if data[offset:offset + len(signature)] == signature:
            if content_type == "video/mp4" and data[8:12] in _AUDIO_MP4_BRANDS:
                return None  # audio/mp4 (M4A), which Twilio does not take
            return content_type
    return None


def _guess_type(name: str) -> str | None:
    content_type = mimetypes.guess_type(name)[0]
    return content_type.lower() if content_type else None  # .amr is "audio/AMR"


def _check_content(data: bytes, content_type: str, source: str, declared_by: str) -> None:
    found = sniff(data)
    expected = _SAME_TYPE.get(content_type, content_type)
    if found is None:
        raise MediaError(f"{source}: its content is not {content_type} (nor any type "
                         "Twilio sends)", transient=False)
    if found != expected:
        raise MediaError(f"{source}: its content is {found}, not {content_type} as "
                         f"{declared_by}", transient=False)


def _check_size(size: int, source: str) -> None:
    if size > MAX_BYTES:
        raise MediaError(f"{source} is {size / 1e6:.1f} MB; Twilio takes at most "
                         f"{MAX_BYTES / 1e6:.0f} MB per file (MMS, WhatsApp images)",
                         transient=False)


def _check_type(content_type: str | None, source: str) -> None:
    if content_type not in CONTENT_TYPES:
        raise MediaError(f"{source}: content type {content_type or 'unknown'} is not one "
                         f"Twilio sends on SMS and WhatsApp (one of "
                         f"{', '.join(sorted(CONTENT_TYPES))})", transient=False)


class MediaLibrary:
    """Configured media turned into MediaSids: uploaded once, remembered in the database."""

    def __init__(self, db: Database, twilio: TwilioSettings, *,
                 session: requests.Session | None = None,
                 fetch_session: requests.Session | None = None):
        self.db = db
        self.twilio = twilio
        self.session = session or requests.Session()  # Twilio's APIs
        # Media URLs: public addresses only (a test passes a plain session for loopback).
        self.fetch_session = fetch_session or public_urls.public_session()
        self._service_sid = twilio.conversation_service_sid
        self._resolved: dict[str, str] = {}  # source -> MediaSid, this process
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def check(self, sources) -> list[str]:
        """Every problem with these media, one line each ('source: problem')."""
        return [f"{source}: {problem}" for source in dict.fromkeys(sources)
                if (problem := check_source(source))]

    def resolve(self, source: str) -> str:
        """The MediaSid to send `source` with: remembered, stored, or uploaded now.

        Raises MediaError; its `transient` says whether a later attempt may succeed.
        """
        with self._lock:
            if source in self._resolved:
                return self._resolved[source]
            lock = self._locks.setdefault(source, threading.Lock())
        with lock:  # one upload per source in this process
            if source in self._resolved:
                return self._resolved[source]
            media_sid = self._resolve(source)
            with self._lock:
                self._resolved[source] = media_sid
            return media_sid

    def service_sid(self) -> str:
        """TWILIO_CONVERSATION_SERVICE_SID, else the account's default service (asked once)."""
        if self._service_sid is None:
            answer = self._call("GET", f"{self._conversations_base}/v1/Configuration")
            sid = answer.get("default_chat_service_sid")
            if not formats.is_sid(sid, "IS"):  # it goes into the upload's URL
                raise MediaError(f"no service SID (IS + 32 hex digits) in {answer!r:.200}",
                                 transient=False)
            self._service_sid = sid
        return self._service_sid

    def _resolve(self, source: str) -> str:
        content = (fetch_url(source, self.twilio.http_timeout, self.fetch_session)
                   if is_url(source) else read_file(source))
        if self.twilio.dry_run:
            media_sid = "ME" + content.sha256[:32]
            log.info("DRY RUN: would upload %s (%s, %d bytes) as %s", source,
                     content.content_type, len(content.data), media_sid)
            return media_sid
        service_sid = self.service_sid()
        key = f"{service_sid}:{content.sha256}"
        with self.db.read() as conn:
            stored = conn.execute(_FIND, {"key": key}).scalar()
        if stored:
            return stored
        media_sid = self._upload(service_sid, content)
        with self.db.transaction() as conn:
            conn.execute(dialect_insert(conn.dialect.name)(MEDIA).values(
                key=key, service_sid=service_sid, media_sid=media_sid, source=source,
                content_type=content.content_type, size=len(content.data),
                uploaded_at=utcnow()).on_conflict_do_nothing(index_elements=["key"]))
            stored = conn.execute(_FIND, {"key": key}).scalar()
        if stored != media_sid:
            log.info("media %s was uploaded by another process meanwhile: using %s "
                     "(this upload, %s, stays unused)", source, stored, media_sid)
        else:
            log.info("media uploaded source=%s media_sid=%s content_type=%s size=%d",
                     source, media_sid, content.content_type, len(content.data))
        return stored

    def _upload(self, service_sid: str, content: Content) -> str:
        base = self.twilio.api_base_url or MCS_BASE_URL
        answer = self._call("POST", f"{base}/v1/Services/{service_sid}/Media",
                            data=content.data,
                            headers={"Content-Type": content.content_type})
        media_sid = answer.get("sid")
        if not formats.is_sid(media_sid, "ME"):
            raise MediaError(f"MCS answered without a MediaSid: {answer!r:.200}",
                             transient=False)
        return media_sid

    @property
    def _conversations_base(self) -> str:
        return self.twilio.api_base_url or CONVERSATIONS_BASE_URL

    def _call(self, method: str, url: str, **kwargs) -> dict:
        """One authenticated request; Twilio's errors as MediaError with code and status."""
        try:
            response = self.session.request(
                method, url, auth=(self.twilio.account_sid, self.twilio.auth_token),
                timeout=self.twilio.http_timeout, **kwargs)
        except requests.RequestException as exc:
            raise MediaError(f"{method} {url}: {type(exc).__name__}: {exc}",
                             transient=True) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            status = response.status_code
            code = body.get("code") if isinstance(body, dict) else None
            message = (body or {}).get("message") if isinstance(body, dict) else None
            raise MediaError(f"{method} {url}: {message or f'HTTP {status}'}",
                             transient=status == 429 or status >= 500, status=status,
                             code=code if isinstance(code, int) else None)
        return body
