"""Decisions made after the webhook's ack: a burst answered once the conversation is quiet
(AUTO_REPLY_DEBOUNCE), an answer written by the answer model (ANSWER_MODEL_URL).

    webhook:  decide(...) -> DEFERRED; pending.defer() in the claim's transaction; 2xx
    composer: pending.lease_due() -> decide(..., composing=True) on the burst's text
              -> the answer model, if any -> in one transaction: the conversation's
              lock, then pending.settle() (the order a webhook takes them in),
              decide again, the reply queued, the message's decision recorded
              -> the sender sends it

`pending.py` is the table (one row per conversation, leased like the outbox);
`composer.py` the loop each serving process runs under its supervisor.
"""
