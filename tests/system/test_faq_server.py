"""The FAQ in real gunicorn workers: the master loads the model once before forking (its
tokenizer shared), each worker builds its index, and a customer's question is answered."""

from __future__ import annotations

from pathlib import Path

from tests.support.decisions import CARD_DELIVERY
from tests.support.servers import flask_cli, gunicorn, reply_counts
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, post

RULES = CARD_DELIVERY + """
[[faq]]
id = "payment-methods"
questions = ["Which payment methods do you accept?", "Can I pay with Google Pay or Apple Pay?"]
answer = "Cards, PayPal, Google Pay and Apple Pay."
"""


def test_two_workers_answer_from_the_faq(tmp_path, database_url, fake_api):
    """Both questions of the issue get their entries' answers, not the fallback."""
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
        "INSTANCE_DIR": tmp_path, "SENDER_IN_PROCESS": "true", "SENDER_POLL_SECONDS": "0.1",
        "RESPONDER_RULES": rules,
    }
    assert flask_cli(env, "db", "upgrade").returncode == 0
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        server.wait_workers(2)
        assert all(loaded_libraries(pid) == {"numpy", "tokenizers"}
                   for pid in server_pids(server))
        for text in ("my card still hasn't arrived, it's been two weeks",
                     "can I pay with google pay?"):
            assert post(server.url, message_added(body=text)).status_code == 200
        wait_for(lambda: reply_counts(database_url) == {"sent": 2}, timeout=30, interval=0.1)
    assert sorted(c.form["Body"] for c in fake_api.created) == [
        "Cards arrive within 7 working days.", "Cards, PayPal, Google Pay and Apple Pay."]


def test_a_server_without_an_faq_never_loads_numpy_or_the_tokenizer(tmp_path, database_url,
                                                                     fake_api):
    """Without an FAQ neither the master nor a worker carries numpy and the tokenizer
    (~16 MB per worker), even after a webhook and with the dashboard's modules loaded."""
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
        "INSTANCE_DIR": tmp_path, "SENDER_IN_PROCESS": "true", "SENDER_POLL_SECONDS": "0.1",
        "ADMIN_TOKEN": "a" * 32,
    }
    assert flask_cli(env, "db", "upgrade").returncode == 0
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        server.wait_workers(2)
        assert post(server.url, message_added()).status_code == 200
        wait_for(lambda: reply_counts(database_url) == {"sent": 1}, timeout=30, interval=0.1)
        assert {pid: loaded_libraries(pid) for pid in server_pids(server)} == {
            pid: set() for pid in server_pids(server)}


def server_pids(server) -> list[int]:
    """The gunicorn master and its workers."""
    return [server.process.pid, *server.worker_pids()]


def loaded_libraries(pid: int) -> set[str]:
    """Which of numpy and tokenizers have their compiled modules mapped in process `pid`."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name for name in ("numpy", "tokenizers") if f"/{name}/" in maps}
