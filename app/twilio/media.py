"""What Twilio takes as media, and reading it: the limits, checked on a file or a URL.

The rules file checks its media with `check_source` at load (app/autoreply/compiler.py);
the sender reads (`read_file`) or downloads (`fetch_url`) a medium before uploading it
once (app/delivery/media.py). Limits (checked at start-up for files, at first use for
URLs):
- 5 MB per file: Twilio's limit for MMS (the whole message) and for WhatsApp images
  (https://www.twilio.com/docs/messaging/guides/accepted-mime-types, error 11751);
- the content types both SMS/MMS and WhatsApp take (CONTENT_TYPES; GIF only on MMS),
  named by the file's extension (or the server's Content-Type) and confirmed by the
  content's first bytes (SIGNATURES): a text file named .png is refused, not uploaded
  as image/png;
- a URL reaches public addresses only (public_urls.py): not loopback, private ranges,
  link-local (cloud metadata) and the like. (Which files a rules file may name, its
  folder and media_dirs, is the rules file's business: app/autoreply/compiler.py.)
- a path or URL of at most MAX_SOURCE_CHARS (the width of the columns that store it).
A URL is fetched at first use, not at start-up: a web server must not fail to boot
because another host is down, and a URL that breaks later would fail the same way.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from . import public_urls
from .errors import ApiError

MAX_BYTES = 5_000_000
MAX_SOURCE_CHARS = 512
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
    try:
        return urlsplit(source).scheme in ("http", "https")
    except ValueError:  # "http://[::1/x.png": meant as a URL, and check_source says why not
        return source[:8].lower().startswith(("http://", "https://"))


def check_source(source: str) -> str | None:
    """What is wrong with a configured medium (None: nothing seen). A file is read and
    checked whole; a URL for its shape and host (it is fetched at first use)."""
    if len(source) > MAX_SOURCE_CHARS:
        return f"longer than {MAX_SOURCE_CHARS} characters"
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
