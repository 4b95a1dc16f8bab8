"""The sender registry: live senders' shares add up to at most TWILIO_CONCURRENCY_LIMIT;
a newcomer grows into its share as the others shrink into theirs; a dead sender's share
returns; a sender that stops hands its share back at once."""

from datetime import timedelta

from sqlalchemy import update

from app.delivery import registry
from app.services import services
from app.store.models import SenderHeartbeat, utcnow


def beat(app, sender_id, *, limit=50, held=0, in_flight=0):
    with services(app).db.transaction() as conn:
        return registry.beat(conn, sender_id, limit=limit, held=held, in_flight=in_flight,
                             concurrency=held, sent=0)


def published(app) -> dict[str, int]:
    with services(app).db.read() as conn:
        return {s.id: s.share for s in registry.live(conn)}


def test_one_sender_takes_the_whole_limit(app):
    assert beat(app, "a").share == 50
    assert published(app) == {"a": 50}


def test_a_newcomer_grows_into_its_share_without_passing_the_limit(app):
    a = beat(app, "a").share
    assert a == 50
    b = beat(app, "b").share  # a still holds 50: nothing free yet
    assert b == 0 and sum(published(app).values()) == 50
    a = beat(app, "a", held=a, in_flight=50).share  # a may still hold 50 calls
    assert a == 25 and published(app)["a"] == 50
    a_next = beat(app, "a", held=a, in_flight=30).share  # 30 calls still in flight
    assert a_next == 25 and published(app)["a"] == 30
    b = beat(app, "b", held=b).share
    assert b == 20  # what a's 30 leave free
    beat(app, "a", held=a_next, in_flight=10)
    assert beat(app, "b", held=b).share == 25
    assert sum(published(app).values()) <= 50


def test_an_uneven_limit_is_split_exactly(app):
    for sender_id in "abc":
        beat(app, sender_id)
    shares = {}
    for _ in range(3):  # each beats in turn until the shares settle
        for sender_id in "abc":
            shares[sender_id] = beat(app, sender_id, held=shares.get(sender_id, 0)).share
    assert shares == {"a": 17, "b": 17, "c": 16}
    assert sum(published(app).values()) == 50


def test_a_dead_senders_share_returns(app):
    beat(app, "a")
    beat(app, "b")
    assert beat(app, "a", held=50, in_flight=0).share == 25
    with services(app).db.transaction() as conn:  # b's last beat was long ago: dead
        conn.execute(update(SenderHeartbeat).where(SenderHeartbeat.id == "b").values(
            heartbeat_at=utcnow() - timedelta(seconds=registry.STALE_SECONDS + 1)))
    assert beat(app, "a", held=25).share == 50


def test_a_stopping_sender_hands_its_share_back(app):
    beat(app, "a")
    beat(app, "b", held=0)
    with services(app).db.transaction() as conn:
        registry.leave(conn, "a")
    assert published(app).keys() == {"b"}
    assert beat(app, "b").share == 50
