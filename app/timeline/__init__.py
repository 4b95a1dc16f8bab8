"""The read model: what the dashboard and the API show, read in short read-only
transactions outside the writer lock (Database.read), never slowing webhooks.

    conversations.py  recent decisions, one conversation's timeline (message, decision,
                      reply, every participant's receipt and its history)
    replies.py        replies by status and time, failures by error code, the queue
    stats.py          statistics over a period, delivered versus failed per hour
    counters.py       what leaves no row (duplicates, signature failures), per hour
"""
