"""End to end: plain `gunicorn wsgi:app` on a fresh database, driven like a user would."""

import re

import pytest
import requests

from tests.support.servers import flask_cli, gunicorn
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, post, sign


@pytest.fixture
def live_env(tmp_path, fake_api):
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "INSTANCE_DIR": tmp_path / "instance",
    }


def test_fresh_sqlite_file_with_several_workers_starts_and_replies(live_env, tmp_path, fake_api):
    """Four workers race to create the schema on a new SQLite file; all serve; replies go out."""
    with gunicorn(live_env, tmp_path / "server.log", workers=4) as server:
        for _ in range(8):  # signed here: one `send-event` process each costs seconds
            response = post(server.url, message_added(body="hello"))
            assert response.status_code == 200, response.text
            assert response.headers["X-Webhook-Outcome"].startswith("reply queued")
        wait_for(lambda: len(fake_api.created) == 8)
        assert "Traceback" not in server.log
        # Each line names the worker that wrote it (the pid is cached per process).
        workers = set(re.findall(r"Booting worker with pid: (\d+)", server.log))
        writers = set(re.findall(r"INFO \[(\d+)\] app\.pipeline\.processor: event", server.log))
        assert writers and writers <= workers


def test_send_event_prints_a_working_curl_command(live_env, tmp_path, fake_api):
    """`send-event --dry` prints a signed curl command that the server accepts."""
    import shlex
    import subprocess

    with gunicorn(live_env, tmp_path / "server.log", workers=1) as server:
        result = flask_cli({**live_env, "PUBLIC_BASE_URL": server.url}, "send-event", "--dry")
        assert result.returncode == 0 and result.stdout.startswith("curl ")
        command = shlex.split(result.stdout.replace("\\\n", " "))
        curl = subprocess.run(command + ["-s"], capture_output=True, text=True, timeout=10)
        assert "HTTP/1.1 200" in curl.stdout
        wait_for(lambda: len(fake_api.created) == 1)


def test_signature_is_checked_on_the_real_server_with_port_in_host(live_env, tmp_path):
    """Over real HTTP the Host header carries the port; Twilio's URL with it validates."""
    with gunicorn(live_env, tmp_path / "server.log", workers=1) as server:
        url = server.url + "/webhooks/conversations?tenant=a%20b"
        params = message_added()
        good = requests.post(url, data=params, headers={"X-Twilio-Signature": sign(params, url)})
        bad = requests.post(url, data=params, headers={"X-Twilio-Signature": sign(params, url, "f" * 32)})
        assert (good.status_code, bad.status_code) == (200, 403)
        assert AUTH_TOKEN not in server.log


@pytest.mark.parametrize("args", [(), ("--preload",)], ids=["workers-load-the-app", "preload"])
def test_dry_run_banner_and_logged_replies(tmp_path, fake_api, args):
    """Without credentials: a banner says dry-run and shows the token, once for the server
    (not once per worker), with the rules file and the dashboard; replies are only logged."""
    env = {"INSTANCE_DIR": tmp_path / "instance"}
    with gunicorn(env, tmp_path / "server.log", workers=3, args=args) as server:
        server.wait_workers(3)  # each worker has built its app: a banner of its own shows
        token = (tmp_path / "instance" / "dev-auth-token").read_text().strip()
        log = server.log
        assert log.count("DRY-RUN MODE") == 1 and log.count(token) == 1, log
        assert log.count("auto-reply rules: none (RESPONDER_RULES is not set)") == 1
        assert log.count("dashboard (/admin) and API (/api/) are off") == 1
        result = flask_cli({**env, "PUBLIC_BASE_URL": server.url}, "send-event", "--body", "hi")
        assert "HTTP 200" in result.stdout, result.stdout + result.stderr
        wait_for(lambda: "DRY RUN: would send" in server.log)
    assert fake_api.created == []


def test_the_master_builds_the_faq_once_and_every_worker_answers_from_it(tmp_path, fake_api):
    """RESPONDER_RULES relative, as the README sets it: gunicorn's master loads the rules
    and their FAQ index before forking, says so once, and the workers answer from it."""
    env = {"INSTANCE_DIR": tmp_path / "instance", "RESPONDER_RULES": "rules.example.toml"}
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        server.wait_workers(2)
        assert server.log.count("(loaded once, with its FAQ index, and shared by the "
                                "workers)") == 1, server.log
        for _ in range(4):  # both workers, whichever takes the connection
            result = flask_cli({**env, "PUBLIC_BASE_URL": server.url}, "send-event",
                               "--body", "Can I pay with Google Pay?")
            assert "HTTP 200" in result.stdout, result.stdout + result.stderr
        wait_for(lambda: server.log.count("Google Pay and Apple Pay") == 4)
    assert fake_api.created == []


def test_bad_configuration_stops_the_server_with_one_message(tmp_path):
    """gunicorn exits at once, and the message names every bad setting."""
    import subprocess

    from tests.support.servers import BIN, ROOT, clean_env
    env = clean_env({"INSTANCE_DIR": tmp_path, "TWILIO_ACCOUNT_SID": "AC12", "PROXY_COUNT": "x"})
    result = subprocess.run([str(BIN / "gunicorn"), "wsgi:app", "--bind", "127.0.0.1:0"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "TWILIO_ACCOUNT_SID" in output and "PROXY_COUNT" in output


def test_a_rules_file_broken_while_the_server_runs_does_not_stop_it(live_env, tmp_path,
                                                                    fake_api):
    """The rules file is edited in place and broken (`rules reload` refuses it), then a
    worker dies (the OOM killer, a timeout): its replacement cannot load the file, but
    the server is not halted: the other worker keeps answering, and once the file is
    whole again a replacement boots."""
    import os
    import signal

    rules = tmp_path / "rules.toml"
    rules.write_text('[fallback]\ntext = "Thanks!"\n')
    fake_api.any_conversation = True
    with gunicorn({**live_env, "RESPONDER_RULES": rules}, tmp_path / "server.log") as server:
        server.wait_workers(2)
        victim = min(server.worker_pids())
        rules.write_text('[fallback]\ntext = "{{ no_such_placeholder }}"\n')
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: "cannot start: " in server.log, timeout=60)
        assert server.process.poll() is None, server.log  # the master runs on
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        assert post(server.url, message_added()).status_code == 200
        rules.write_text('[fallback]\ntext = "Thanks again!"\n')
        server.wait_workers(3, timeout=60)  # a third worker loaded the mended file
        assert server.process.poll() is None


@pytest.mark.parametrize("setting", ["WEB_CONCURRENCY=0", "WEB_CONCURRENCY=1001",
                                     "GUNICORN_THREADS=abc", "GUNICORN_THREADS=0",
                                     "REQUEST_READ_TIMEOUT=abc", "REQUEST_READ_TIMEOUT=-1"])
def test_gunicorn_settings_it_cannot_use_stop_it_in_one_line(tmp_path, setting):
    """WEB_CONCURRENCY=0 left a master listening with no worker (requests hung); the
    others were tracebacks, or a worker dying in a loop."""
    import subprocess

    from tests.support.servers import BIN, ROOT, clean_env, free_port

    name, value = setting.split("=")
    run = subprocess.run([str(BIN / "gunicorn"), "wsgi:app", "--bind",
                          f"127.0.0.1:{free_port()}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env=clean_env({
                             name: value, "INSTANCE_DIR": str(tmp_path)}))
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith(f"cannot start: {name} must be")
    assert "Traceback" not in run.stderr
