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
return its MediaSid. Each process also remembers what it resolved. What Twilio takes (size,
types, public URLs only) and reading a file or URL: app/twilio/media.py.
"""

from __future__ import annotations

import logging
import threading

import requests
from sqlalchemy import bindparam, select

from config import TwilioSettings

from .. import formats
from ..store.database import Database, dialect_insert
from ..store.models import MediaUpload, utcnow
from ..twilio import public_urls
from ..twilio.media import Content, MediaError, check_source, fetch_url, is_url, read_file

log = logging.getLogger(__name__)

MCS_BASE_URL = "https://mcs.us1.twilio.com"
CONVERSATIONS_BASE_URL = "https://conversations.twilio.com"
MEDIA = MediaUpload.__table__
_FIND = select(MEDIA.c.media_sid).where(MEDIA.c.key == bindparam("key"))


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
