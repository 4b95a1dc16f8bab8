"""What an operator does, one implementation each, called alike by the CLI (app/cli/),
the JSON API (app/web/api.py) and the dashboard (app/web/admin/): they log, wake the
sender and refuse in the same words.

    periods.py   a period in plain words (24h, 7d, or ISO 8601 times), checked
    requeue.py   a failed reply (or every one) sent again: logged, the sender woken
    switch.py    the auto-reply switch: turned on or off (logged), and where it stands

What they read comes from the read model (app/timeline/).
"""
