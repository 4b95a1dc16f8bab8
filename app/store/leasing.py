"""The rows a lease takes: `UPDATE ... WHERE key IN (due rows, LIMIT n, FOR UPDATE SKIP
LOCKED)`, as the outbox (replies) and the composer (bursts) lease theirs.

    update(table).where(table.c.key.in_(taken_once(due, dialect_name)))

On PostgreSQL the due rows are chosen once, in a MATERIALIZED CTE: as a plain `IN
(subquery)` the planner may run the subquery again for each row it scans (a nested-loop
semi-join, once the table's statistics say it is small), each run skipping the rows the
statement already updated, so LIMIT 1 leased two replies (a conversation's second among
them) and every due burst. SQLite has one writer at a time and no row locks: the plain
subquery.
"""

from __future__ import annotations

from sqlalchemy import Select, select


def taken_once(due: Select, dialect_name: str):
    """`due` (one column, ordered, limited, FOR UPDATE SKIP LOCKED) as what `in_` takes."""
    if dialect_name == "postgresql":
        cte = due.cte("due").prefix_with("MATERIALIZED")
        return select(*cte.c)
    return due.scalar_subquery()
