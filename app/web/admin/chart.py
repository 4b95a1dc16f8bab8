"""Delivered versus failed replies per hour, as an SVG drawn on the server: no script,
no library, readable on a phone (it scales to the page's width)."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD, AXIS = 720, 200, 8, 28
DELIVERED, FAILED, OTHER = "#2e7d32", "#c62828", "#9e9e9e"


def svg(hours: list[dict]) -> Markup:
    """Stacked bars (delivered, failed, other) per hour, oldest left; a title per bar."""
    top = max((h["delivered"] + h["failed"] + h["other"] for h in hours), default=0) or 1
    slot = (WIDTH - 2 * PAD) / max(len(hours), 1)
    plot = HEIGHT - AXIS - PAD
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" class="chart" aria-label="Replies per hour: delivered versus '
             f'failed, last {len(hours)} hours">',
             f'<text x="{PAD}" y="14" class="axis">max {top}/h</text>']
    for i, hour in enumerate(hours):
        x = PAD + i * slot
        y = HEIGHT - AXIS
        label = (f'{hour["hour"]:%d %b %H}:00 UTC: {hour["delivered"]} delivered, '
                 f'{hour["failed"]} failed, {hour["other"]} sent or pending')
        parts.append(f"<g><title>{escape(label)}</title>")
        for key, colour in (("delivered", DELIVERED), ("failed", FAILED), ("other", OTHER)):
            h = plot * hour[key] / top
            if h:
                y -= h
                parts.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" '
                             f'height="{h:.1f}" fill="{colour}" class="{key}"/>')
        parts.append("</g>")
        if i % 3 == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - 10}" class="axis" '
                         f'text-anchor="middle">{hour["hour"]:%H}h</text>')
    parts.append(f'<line x1="{PAD}" y1="{HEIGHT - AXIS}" x2="{WIDTH - PAD}" '
                 f'y2="{HEIGHT - AXIS}" stroke="#555"/></svg>')
    return Markup("".join(parts))
