"""Delivered versus failed replies per hour, as an SVG drawn on the server: no script,
no library. Two drawings of the same hours: a wide one for a desktop, a compact one
for a phone (fewer, larger labels once scaled down); the stylesheet shows one."""

from __future__ import annotations

from markupsafe import Markup, escape

DELIVERED, FAILED, OTHER = "#2e7d32", "#c62828", "#9e9e9e"
# width, height, padding, axis band, font size, an hour label every n bars
WIDE = (720, 200, 8, 28, 11, 3)
COMPACT = (360, 220, 6, 34, 15, 6)


def svg(hours: list[dict], compact: bool = False) -> Markup:
    """Stacked bars (delivered, failed, other) per hour, oldest left; a title per bar."""
    width, height, pad, axis, font, every = COMPACT if compact else WIDE
    top = max((h["delivered"] + h["failed"] + h["other"] for h in hours), default=0) or 1
    slot = (width - 2 * pad) / max(len(hours), 1)
    plot = height - axis - pad - font
    kind = "compact" if compact else "wide"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" class="chart {kind}" aria-label="Replies per hour: delivered '
             f'versus failed, last {len(hours)} hours">',
             f'<text x="{pad}" y="{font + 2}" class="axis" font-size="{font}">'
             f'max {top}/h</text>']
    for i, hour in enumerate(hours):
        x = pad + i * slot
        y = height - axis
        label = (f'{hour["hour"]:%d %b %H}:00 UTC: {hour["delivered"]} delivered, '
                 f'{hour["failed"]} failed, {hour["other"]} sent, pending or dry run')
        parts.append(f"<g><title>{escape(label)}</title>")
        for key, colour in (("delivered", DELIVERED), ("failed", FAILED), ("other", OTHER)):
            h = plot * hour[key] / top
            if h:
                y -= h
                parts.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" '
                             f'height="{h:.1f}" fill="{colour}" class="{key}"/>')
        parts.append("</g>")
        if i % every == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - axis + font + 6}" '
                         f'class="axis" font-size="{font}" text-anchor="middle">'
                         f'{hour["hour"]:%H}h</text>')
    parts.append(f'<line x1="{pad}" y1="{height - axis}" x2="{width - pad}" '
                 f'y2="{height - axis}" stroke="#555"/></svg>')
    return Markup("".join(parts))
