"""Names the decision, the rules file and the CLI share: importable without pydantic,
Jinja2's sandbox, `regex` or the holiday calendars, which load only with a rules file
(a worker without one stays that much smaller)."""

# The names a decision gives the file's sections (Decision.rule); no [[rules]] may take one.
GREETING, AFTER_HOURS, FALLBACK = "greeting", "after_hours", "fallback"

SMS = "SMS"
SMS_MAX_CHARS = 1_600  # Twilio refuses a longer SMS body (error 21617)

# The webhook's Source values a reply can be tailored to. Twilio documents SMS, WHATSAPP,
# SDK and API; the others are channels Conversations connects. A name not listed here is
# most likely a typo; add a new Source here when Twilio starts sending one.
CHANNELS = frozenset({"SMS", "MMS", "WHATSAPP", "SDK", "API", "CHAT", "MESSENGER", "GBM"})
