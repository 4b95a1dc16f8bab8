"""MediaLibrary: reply media uploaded once to the (fake) Media Content Service over HTTP."""

from __future__ import annotations

import dataclasses
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import func, select

from app.delivery.media import MediaLibrary
from app.services import services
from app.store.models import MediaUpload
from app.twilio.media import MAX_BYTES, MediaError, read_file
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


@pytest.fixture
def library(app):
    """A library that may fetch from loopback: `web` below is on 127.0.0.1. (The real one
    refuses private addresses: test_a_url_on_a_private_address_is_refused...)"""
    return MediaLibrary(services(app).db, services(app).settings.twilio,
                        fetch_session=requests.Session())


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "opening-hours.png"
    path.write_bytes(PNG)
    return str(path)


@pytest.fixture
def web():
    """A loopback web server: `web.files[path] = (status, content_type, body)`."""
    files: dict[str, tuple[int, str, bytes]] = {}
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            asked.append(self.path)
            status, content_type, body = files.get(self.path, (404, "text/plain", b"no"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.files = files
    server.asked = asked
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


def uploads(app) -> int:
    with services(app).db.read() as conn:
        return conn.execute(select(func.count()).select_from(MediaUpload)).scalar()


def test_a_file_is_uploaded_once_and_its_media_sid_reused(app, fake_api, library, png):
    """The bytes and their type reach MCS once; later replies, and another process, reuse
    the stored MediaSid."""
    media_sid = library.resolve(png)
    assert media_sid.startswith("ME")
    assert library.resolve(png) == media_sid
    [uploaded] = fake_api.resources.media.values()
    assert (uploaded["sid"], uploaded["content"], uploaded["content_type"]) == (
        media_sid, PNG, "image/png")
    assert uploaded["service_sid"] == fake_api.resources.default_service_sid
    other_process = MediaLibrary(services(app).db, services(app).settings.twilio)
    assert other_process.resolve(png) == media_sid
    assert len(fake_api.resources.media) == 1 and uploads(app) == 1


def test_the_configured_service_is_used_without_asking_for_the_default(app, fake_api, png):
    """TWILIO_CONVERSATION_SERVICE_SID names the service; /v1/Configuration is not read."""
    service = "IS" + "c3" * 16
    fake_api.resources.services[service] = "Support"
    twilio = dataclasses.replace(services(app).settings.twilio, conversation_service_sid=service)
    MediaLibrary(services(app).db, twilio).resolve(png)
    [uploaded] = fake_api.resources.media.values()
    assert uploaded["service_sid"] == service
    assert ("GET", "/v1/Configuration") not in fake_api.requests


def test_two_processes_racing_store_one_row_and_send_the_same_sid(app, fake_api, png):
    """Both upload (neither saw the other's row yet), one row is kept, both answer it."""
    fake_api.latency = 0.3
    first, second = (MediaLibrary(services(app).db, services(app).settings.twilio)
                     for _ in range(2))
    first.service_sid(), second.service_sid()
    results = []
    threads = [threading.Thread(target=lambda lib=lib: results.append(lib.resolve(png)))
               for lib in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_api.resources.media) == 2  # both uploaded
    assert uploads(app) == 1 and len(set(results)) == 1


def test_threads_of_one_process_upload_once(app, fake_api, library, png):
    fake_api.latency = 0.2
    results = []
    threads = [threading.Thread(target=lambda: results.append(library.resolve(png)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(fake_api.resources.media) == 1


def test_a_url_is_fetched_at_first_use_and_uploaded(app, fake_api, library, web):
    web.files["/logo.png"] = (200, "image/png; charset=binary", PNG)
    assert library.check(["https://media.example.com/logo.png"]) == []  # not fetched
    media_sid = library.resolve(web.url + "/logo.png")
    assert fake_api.resources.media[media_sid]["content"] == PNG


@pytest.mark.parametrize("status, transient", [(503, True), (404, False)])
def test_a_url_that_fails_says_whether_to_retry(library, web, status, transient):
    web.files["/logo.png"] = (status, "text/plain", b"nope")
    with pytest.raises(MediaError) as failure:
        library.resolve(web.url + "/logo.png")
    assert failure.value.transient is transient
    assert f"HTTP {status}" in failure.value.message


def test_a_url_serving_a_type_twilio_refuses_fails_for_good(library, web, fake_api):
    web.files["/page"] = (200, "text/html", b"<html></html>")
    with pytest.raises(MediaError, match="content type text/html") as failure:
        library.resolve(web.url + "/page")
    assert not failure.value.transient and not fake_api.resources.media


def test_an_upload_refused_is_permanent_an_api_down_transient_nothing_stored(
        app, fake_api, library, png):
    fake_api.resources.services.clear()  # the fake answers 404 for an unknown service
    with pytest.raises(MediaError, match="not found") as failure:
        library.resolve(png)
    assert (failure.value.transient, failure.value.status, failure.value.code) == (
        False, 404, 20404)
    fake_api.stop()
    with pytest.raises(MediaError) as failure:
        MediaLibrary(services(app).db, services(app).settings.twilio).resolve(png)
    assert failure.value.transient and uploads(app) == 0


def test_start_up_check_names_each_bad_file(tmp_path, library, png):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * (MAX_BYTES + 1))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    problems = library.check([png, str(big), str(text), str(tmp_path / "gone.png"),
                              "ftp://example.com/a.png"])
    assert problems == [
        f"{big}: {big} is 5.0 MB; Twilio takes at most 5 MB per file (MMS, WhatsApp images)",
        f"{text}: {text}: content type text/plain is not one Twilio sends on SMS and "
        "WhatsApp (one of application/pdf, audio/amr, audio/mpeg, audio/ogg, image/gif, "
        "image/jpeg, image/png, text/vcard, text/x-vcard, video/mp4)",
        f"{tmp_path / 'gone.png'}: no such file '{tmp_path / 'gone.png'}'",
        "ftp://example.com/a.png: only http(s) URLs or file paths, got "
        "'ftp://example.com/a.png'",
    ]


def test_dry_run_uploads_nothing(app, fake_api, png):
    twilio = dataclasses.replace(services(app).settings.twilio, account_sid="", auth_token="")
    media_sid = MediaLibrary(services(app).db, twilio).resolve(png)
    assert media_sid.startswith("ME") and not fake_api.resources.media and uploads(app) == 0


def test_the_fake_records_a_message_created_with_a_media_sid(fake_api):
    """The sender's call: messages.create(media_sid=...) reaches the API as MediaSid."""
    from app.twilio.client import twilio_client
    client = twilio_client(ACCOUNT_SID, AUTH_TOKEN, base_url=fake_api.url)
    client.conversations.v1.conversations(fake_api.add_conversation()).messages.create(
        author="support-bot", body="Our hours", media_sid="ME" + "1" * 32)
    assert fake_api.created[-1].form["MediaSid"] == "ME" + "1" * 32


def test_a_service_sid_of_the_wrong_shape_is_not_put_in_the_upload_url(fake_api, library, png):
    """The account's default service comes from Twilio's answer; one that is not IS + 32
    hex digits is refused for good, and nothing is uploaded anywhere."""
    fake_api.resources.default_service_sid = "IS" + "a" * 32 + "/../../Conversations"
    with pytest.raises(MediaError) as caught:
        library.resolve(png)
    assert caught.value.transient is False and "no service SID" in caught.value.message
    assert [path for method, path in fake_api.calls if method == "POST"] == []


def test_a_url_on_a_private_address_is_refused_before_any_request(app, web):
    """The address a connection reaches is checked, after DNS and on every redirect: a
    private one is closed before the request is sent, a permanent failure."""
    web.files["/logo.png"] = (200, "image/png", PNG)
    library = MediaLibrary(services(app).db, services(app).settings.twilio)
    with pytest.raises(MediaError) as failure:
        library.resolve(web.url + "/logo.png")
    assert not failure.value.transient
    assert "reaches 127.0.0.1, not a public address" in failure.value.message
    assert web.asked == []


def test_a_url_serving_other_bytes_than_its_type_fails_for_good(library, web, fake_api):
    """An error page served as image/png is not uploaded as a picture."""
    web.files["/logo.png"] = (200, "image/png", b"<html>Not found</html>")
    with pytest.raises(MediaError, match="its content is not image/png") as failure:
        library.resolve(web.url + "/logo.png")
    assert not failure.value.transient and not fake_api.resources.media


MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 32
SIGNED = [
    ("photo.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 32, "image/jpeg"),
    ("hours.png", PNG, "image/png"),
    ("wave.gif", b"GIF89a" + b"\x00" * 32, "image/gif"),
    ("menu.pdf", b"%PDF-1.7\n" + b"\x00" * 32, "application/pdf"),
    ("clip.mp4", MP4, "video/mp4"),
    ("jingle.mp3", b"ID3\x04" + b"\x00" * 32, "audio/mpeg"),
    ("frames.mp3", b"\xff\xfb\x90\x00" + b"\x00" * 32, "audio/mpeg"),
    ("note.ogg", b"OggS\x00" + b"\x00" * 32, "audio/ogg"),
    ("voice.amr", b"#!AMR\n" + b"\x00" * 32, "audio/amr"),
    ("card.vcf", b"\xef\xbb\xbfBEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n", "text/vcard"),
]


@pytest.mark.parametrize(("name", "data", "content_type"), SIGNED)
def test_a_file_is_typed_by_its_content(tmp_path, library, name, data, content_type):
    """Each type Twilio takes is recognised by its first bytes, and uploaded as such."""
    path = tmp_path / name
    path.write_bytes(data)
    assert library.check([str(path)]) == []
    assert read_file(str(path)).content_type == content_type


@pytest.mark.parametrize(("name", "data", "problem"), [
    ("notes.png", b"hello", "its content is not image/png (nor any type Twilio sends)"),
    ("photo.png", SIGNED[0][1], "its content is image/jpeg, not image/png as its name says"),
    ("audio.mp4", b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 32,
     "its content is not video/mp4 (nor any type Twilio sends)"),
    ("menu.pdf", b"", "its content is not application/pdf (nor any type Twilio sends)"),
])
def test_a_file_whose_content_is_not_what_its_name_says_is_refused(tmp_path, library, name,
                                                                    data, problem):
    """A text file named .png was uploaded as image/png: now the bytes decide."""
    path = tmp_path / name
    path.write_bytes(data)
    assert library.check([str(path)]) == [f"{path}: {path}: {problem}"]
