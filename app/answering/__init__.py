"""The optional answer model: an OpenAI-compatible chat-completions endpoint that writes
answers from the knowledge base, never on the webhook's request path.

    answerer = Answerer(db, settings.answer_model, policy)   # once (app/__init__.py)
    assist = answerer.consult(item, message, first, now)     # by the composer, per burst

`guardrails.py` (pure) turns the model's output into an autoreply.Assist or refuses it;
`client.py` makes the one call (prompt, timeout, no retries); `answerer.py` checks the
caps, calls, and stores every call's raw output (`model_calls`). docs/answer-model.md.
"""
