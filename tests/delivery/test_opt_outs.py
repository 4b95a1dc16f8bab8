"""Opt-outs: recorded from Twilio's 21610 with the failed reply, cleared on opt-in."""

from sqlalchemy import select

from app.delivery import opt_outs
from app.services import services
from app.store.models import OptOut, Reply
from tests.support.sending import run_until_idle

CUSTOMER = "whatsapp:+15558675310"
PARTICIPANT = "MB" + "d" * 32
CONVERSATION = "CH" + "a" * 32


def any_opted_out(conn, addresses) -> bool:
    """Whether any of these addresses is recorded as opted out."""
    known = [a for a in addresses if a]
    return bool(known) and conn.execute(
        select(OptOut.address).where(OptOut.address.in_(known)).limit(1)).first() is not None


def recorded(app) -> dict:
    with services(app).db.session() as s:
        return {o.address: (o.error_code, o.conversation_sid)
                for o in s.scalars(select(OptOut))}


def test_record_skips_missing_addresses_and_keeps_the_first(app):
    """None and repeats are skipped; an address recorded already keeps its first record."""
    db = services(app).db
    with db.transaction() as conn:
        opt_outs.record(conn, [CUSTOMER, None, CUSTOMER], error_code=21610,
                        conversation_sid=CONVERSATION)
        opt_outs.record(conn, [None], error_code=21610, conversation_sid=CONVERSATION)
    with db.transaction() as conn:
        opt_outs.record(conn, (CUSTOMER, PARTICIPANT), error_code=30004,
                        conversation_sid="CH" + "b" * 32)
    assert recorded(app) == {CUSTOMER: (21610, CONVERSATION),
                             PARTICIPANT: (30004, "CH" + "b" * 32)}


def test_any_opted_out_and_clear(app):
    """Any one address opted out is enough; clearing forgets the addresses given."""
    db = services(app).db
    with db.transaction() as conn:
        assert not any_opted_out(conn, [CUSTOMER, PARTICIPANT])
        opt_outs.record(conn, [PARTICIPANT], error_code=21610, conversation_sid=None)
        assert any_opted_out(conn, [CUSTOMER, PARTICIPANT])
        assert not any_opted_out(conn, [CUSTOMER, None])
        assert not any_opted_out(conn, [None])
        assert opt_outs.clear(conn, [CUSTOMER, PARTICIPANT, None]) == 1
        assert opt_outs.clear(conn, [None]) == 0
        assert not any_opted_out(conn, [PARTICIPANT])


def test_21610_fails_the_reply_and_records_the_opt_out(app, sender, fake_api, queue):
    """Twilio says the customer replied STOP: the reply fails and the customer is opted out."""
    fake_api.fail(1, status=400, code=21610)
    queue(CONVERSATION, customer=CUSTOMER, participant_sid=PARTICIPANT, channel="WHATSAPP")
    assert run_until_idle(sender) == 1
    queue("CH" + "b" * 32, customer="+15550000000")  # another customer's reply goes out
    assert run_until_idle(sender) == 1
    with services(app).db.session() as s:
        statuses = dict(s.execute(select(Reply.conversation_sid, Reply.status)).all())
    assert statuses == {CONVERSATION: "failed", "CH" + "b" * 32: "sent"}
    assert recorded(app) == {CUSTOMER: (21610, CONVERSATION),
                             PARTICIPANT: (21610, CONVERSATION)}


def test_other_permanent_errors_record_no_opt_out(app, sender, fake_api, queue):
    """Only 21610 means the customer opted out."""
    fake_api.fail(1, status=400, code=63024)
    queue(CONVERSATION, customer=CUSTOMER, participant_sid=PARTICIPANT)
    run_until_idle(sender)
    assert recorded(app) == {}
