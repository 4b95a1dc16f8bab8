"""The before/after listing `webhooks configure` and `setup --address` print."""

from __future__ import annotations


def diff_lines(rows, width: int) -> list[str]:
    """`rows`: (title, old, new, changed). A changed field shows `-` old and `+` new; the
    others their value once."""
    lines = []
    for title, old, new, changed in rows:
        if changed:
            lines.append(f"  - {title:<{width}} {old}")
            lines.append(f"  + {title:<{width}} {new}")
        else:
            lines.append(f"    {title:<{width}} {old}")
    return lines
