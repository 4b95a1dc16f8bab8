"""Settings: read once from the environment (and `.env`), validated, frozen.

Every setting is a string in the environment; `load_settings()` turns them into typed
values and collects *every* problem before failing, so one start-up message names all
of them. The result is a frozen `Settings` made of one part per concern, so each
component gets only its part (handlers see `BotSettings`, never credentials). SIDs and
tokens stay strings (Flask's `from_prefixed_env()` would turn a
digit-only token into an int).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent
INSTANCE_DIR = ROOT / "instance"
# In dry-run mode, with AGENT_IDENTITIES unset, this author is an agent: the README's
# `send-event --author alice@support` shows the agent guard with no set-up. A dry-run
# server answers only webhooks signed with its local development token, so no real
# customer can be taken for it.
EXAMPLE_AGENT = "alice@support"
DEFAULT_AUTO_REPLY_TEXT = (
    "Thanks for your message! A member of our support team will get back to you soon."
)
REPLY_MAX_CHARS = 1_600  # as app.autoreply.names.SMS_MAX_CHARS (config imports no app code)
# Handoff: what a customer says to ask for a person, and what the bot says then.
# One word counts only as (nearly) the whole message; several words anywhere.
DEFAULT_HANDOFF_PHRASES = ("human", "agent", "operator", "representative", "real person",
                           "human agent", "talk to a human", "speak to a human",
                           "talk to a person", "speak to a person", "talk to an agent",
                           "speak to an agent", "talk to someone", "speak to someone",
                           "want a human", "need a human", "want an agent", "need an agent")
DEFAULT_HANDOFF_MESSAGE = ("I'm passing you to a member of our team; they will answer here "
                           "as soon as they can.")
NO_PHRASES = "none"  # HANDOFF_PHRASES=none: customers cannot ask (on decline only)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("TEXT", "JSON")
MAX_NUMBER = 1_000_000_000  # no numeric setting may be larger
MIN_ADMIN_TOKEN_LENGTH = 32  # the dashboard's password and the API's bearer token

_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_AUTH_TOKEN = re.compile(r"[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"IS[0-9a-fA-F]{32}")


class ConfigError(Exception):
    """One or more settings are missing or malformed; the message lists them all."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        if len(problems) == 1:  # one line: what systemd's status and Heroku's release show
            super().__init__(f"invalid configuration: {problems[0]}")
            return
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration ({len(problems)} problem(s)):\n{lines}")


def environment(dotenv_path: str | os.PathLike | None = None) -> dict[str, str]:
    """Return the process environment over the values of `.env` (the environment wins)."""
    path = Path(dotenv_path) if dotenv_path else ROOT / ".env"
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    values.update(os.environ)
    return values


@dataclass(frozen=True)
class TwilioSettings:
    """The account and the REST client. The Auth Token never shows in a repr."""

    account_sid: str
    auth_token: str = field(repr=False)
    api_base_url: str | None
    http_timeout: float
    conversation_service_sid: str | None = None  # IS...: media uploads (None: the default)

    @property
    def dry_run(self) -> bool:
        return not (self.account_sid and self.auth_token)


@dataclass(frozen=True)
class BotSettings:
    """What the bot's decisions may see: who it is, who the agents are, what it says and
    when it stays silent."""

    identity: str
    agent_identities: frozenset[str]
    auto_reply_text: str
    auto_reply_enabled: bool  # the start-up default of the runtime switch
    cooldown_seconds: int  # at most one reply per conversation within this (0: off)
    budget: int  # hard cap of replies per conversation per rolling hour
    handoff_seconds: int  # silent this long after an agent wrote (0: off)
    rules_path: Path | None  # RESPONDER_RULES: a TOML rules file (None: defaults only)
    debounce_seconds: int = 0  # AUTO_REPLY_DEBOUNCE: answer a burst once quiet this long
    handoff_phrases: tuple[str, ...] = DEFAULT_HANDOFF_PHRASES
    handoff_message: str = DEFAULT_HANDOFF_MESSAGE
    handoff_on_decline: bool = False  # hand off instead of the greeting/fallback
    # The FAQ's thresholds (docs/faq.md): answer when the best entry scores at least
    # faq_answer_score and leads the next by faq_margin; offer entries within the margin
    # that score at least faq_clarify_score. None: the FAQ model's own, chosen on
    # eval/clinc150 (app/knowledge/models.py).
    faq_answer_score: float | None = None
    faq_margin: float | None = None
    faq_clarify_score: float | None = None


@dataclass(frozen=True)
class AnswerModelSettings:
    """An optional OpenAI-compatible chat-completions endpoint that writes answers from
    the knowledge base (app/answering/). The key never shows in a repr."""

    url: str | None = None  # ANSWER_MODEL_URL, e.g. http://127.0.0.1:8000/v1 (None: off)
    model: str = ""  # ANSWER_MODEL
    key: str = field(default="", repr=False)  # ANSWER_MODEL_KEY
    timeout: float = 8.0  # ANSWER_MODEL_TIMEOUT: then the offline outcome stands
    max_per_conversation: int = 20  # calls per conversation per rolling day
    max_per_day: int = 1000  # calls across every conversation per rolling day

    @property
    def enabled(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class WebSettings:
    public_base_urls: tuple[str, ...]  # the origins Twilio may call (empty: loopback only)
    proxy_count: int
    max_body_bytes: int
    # ADMIN_TOKEN: bearer token of /api/ and /metrics, the dashboard's password; empty: 404;
    # at least MIN_ADMIN_TOKEN_LENGTH characters.
    admin_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    auto_upgrade: bool
    timeout: float  # seconds a statement, connection or lock wait may take


@dataclass(frozen=True)
class SenderSettings:
    in_process: bool
    concurrency_limit: int  # Conversations REST calls in flight across all senders
    max_per_process: int | None  # an optional cap on one sender's share
    poll_seconds: float
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    lease_seconds: int
    # After a create whose outcome is unknown, no resend until this long after it began
    # (and a look at Twilio first): that create may still land.
    settle_seconds: float


@dataclass(frozen=True)
class JobSettings:
    retention_seconds: int
    # Messages' and replies' texts are cleared after this (0: an inbound text is never
    # stored, only who wrote it, when, on which channel, and its media's types).
    text_retention_seconds: int
    prune_interval_seconds: int
    catch_up_interval_seconds: int
    catch_up_window_seconds: int
    catch_up_max_conversations: int


@dataclass(frozen=True)
class ObservabilitySettings:
    log_format: str  # LOG_FORMAT: text (key=value) or json (one object per line)
    metrics_port: int | None  # METRICS_PORT: serve /metrics there, without a token
    metrics_host: str  # METRICS_HOST: the address that port binds (loopback by default)
    # PROMETHEUS_MULTIPROC_DIR: the workers' shared metric files (None: gunicorn's
    # master makes a temporary folder; see app/observability/multiprocess.py)
    multiproc_dir: Path | None


@dataclass(frozen=True)
class Settings:
    """Every setting, typed and frozen; each part goes only where it is needed."""

    twilio: TwilioSettings
    bot: BotSettings
    web: WebSettings
    database: DatabaseSettings
    sender: SenderSettings
    jobs: JobSettings
    instance_dir: Path
    log_level: str
    observability: ObservabilitySettings
    answer_model: AnswerModelSettings = AnswerModelSettings()

    @property
    def dry_run(self) -> bool:
        return self.twilio.dry_run


def load_settings(env: Mapping[str, str]) -> Settings:
    """Turn raw environment strings into the app's typed settings, or raise ConfigError."""
    problems: list[str] = []
    reader = _Reader(env, problems)

    sid = reader.text("TWILIO_ACCOUNT_SID")
    token = reader.text("TWILIO_AUTH_TOKEN")
    if sid and not _ACCOUNT_SID.fullmatch(sid):
        problems.append("TWILIO_ACCOUNT_SID must be 'AC' followed by 32 hex characters")
    if token and not _AUTH_TOKEN.fullmatch(token):
        problems.append(
            "TWILIO_AUTH_TOKEN must be 32 hex characters (the account's primary Auth "
            "Token; API keys cannot validate webhook signatures)"
        )
    if bool(sid) != bool(token):
        missing = "TWILIO_AUTH_TOKEN" if sid else "TWILIO_ACCOUNT_SID"
        problems.append(f"{missing} is missing: live mode needs both SID and token")

    try:
        instance_dir = Path(reader.text("INSTANCE_DIR") or INSTANCE_DIR).expanduser().resolve()
    except RuntimeError as exc:  # ~nosuchuser
        problems.append(f"INSTANCE_DIR: cannot use the path: {exc}")
        instance_dir = INSTANCE_DIR
    database_url = reader.text("DATABASE_URL") or f"sqlite:///{instance_dir / 'bot.sqlite3'}"
    if database_url.startswith("sqlite:///~"):  # as a shell would: not a folder named ~
        try:
            database_url = "sqlite:///" + str(
                Path(database_url[len("sqlite:///"):]).expanduser())
        except RuntimeError as exc:  # ~nosuchuser
            problems.append(f"DATABASE_URL: cannot use the path: {exc}")
    if database_url.startswith("postgres://"):  # Heroku's spelling
        database_url = "postgresql://" + database_url[len("postgres://"):]
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    if not database_url.startswith(("sqlite:", "postgresql+psycopg://")):
        problems.append("DATABASE_URL must be an sqlite:/// or postgres(ql):// URL")
    elif problem := database_url_problem(database_url):
        problems.append(problem)
    elif (folder := _sqlite_folder(database_url)) and folder != instance_dir \
            and not folder.is_dir():
        # Only the instance folder is created: a typo elsewhere must not start an empty
        # database in a new folder.
        problems.append(f"DATABASE_URL: the folder {folder} does not exist (create it, or "
                        "correct the path)")

    http_timeout = reader.number("TWILIO_HTTP_TIMEOUT", 10.0, minimum=0.1, maximum=600)
    settings = Settings(
        twilio=TwilioSettings(
            account_sid=sid, auth_token=token,
            api_base_url=reader.url("TWILIO_API_BASE_URL"), http_timeout=http_timeout,
            conversation_service_sid=reader.sid("TWILIO_CONVERSATION_SERVICE_SID",
                                                _SERVICE_SID, "'IS' and 32 hex characters")),
        bot=BotSettings(
            identity=reader.text("BOT_IDENTITY") or "support-bot",
            agent_identities=(frozenset(reader.csv("AGENT_IDENTITIES"))
                              or frozenset({EXAMPLE_AGENT} if not (sid and token) else ())),
            auto_reply_text=reader.reply("AUTO_REPLY_TEXT") or DEFAULT_AUTO_REPLY_TEXT,
            auto_reply_enabled=reader.flag("AUTO_REPLY_ENABLED", True),
            cooldown_seconds=reader.duration("AUTO_REPLY_COOLDOWN", 3600),
            budget=int(reader.number("AUTO_REPLY_BUDGET", 5, minimum=1, integer=True)),
            handoff_seconds=reader.duration("HANDOFF_WINDOW", 30 * 60),
            rules_path=reader.path("RESPONDER_RULES"),
            debounce_seconds=reader.duration("AUTO_REPLY_DEBOUNCE", 0),
            handoff_phrases=handoff_phrases(reader),
            handoff_message=reader.reply("HANDOFF_MESSAGE") or DEFAULT_HANDOFF_MESSAGE,
            handoff_on_decline=reader.flag("HANDOFF_ON_DECLINE", False),
            faq_answer_score=reader.number("FAQ_ANSWER_SCORE", None, minimum=0.0, maximum=2.0),
            faq_margin=reader.number("FAQ_MARGIN", None, minimum=0.0, maximum=2.0),
            faq_clarify_score=reader.number("FAQ_CLARIFY_SCORE", None, minimum=0.0,
                                            maximum=2.0)),
        web=WebSettings(
            public_base_urls=tuple(
                url for part in reader.csv("PUBLIC_BASE_URL")
                if (url := reader.url("PUBLIC_BASE_URL", origin_only=True, raw=part))),
            proxy_count=int(reader.number("PROXY_COUNT", 0, minimum=0, integer=True)),
            max_body_bytes=int(reader.number("WEBHOOK_MAX_BYTES", 256 * 1024, minimum=1024,
                                             integer=True)),
            admin_token=reader.secret("ADMIN_TOKEN", MIN_ADMIN_TOKEN_LENGTH)),
        database=DatabaseSettings(
            url=database_url,
            auto_upgrade=reader.flag("DATABASE_AUTO_UPGRADE", database_url.startswith("sqlite")),
            # A webhook answers within it (+ 1 s): under Twilio's 5 s (web/arrival.py).
            timeout=reader.number("DATABASE_TIMEOUT", 2.0, minimum=0.1, maximum=3.5)),
        sender=SenderSettings(
            in_process=reader.flag("SENDER_IN_PROCESS", True),
            concurrency_limit=int(reader.number("TWILIO_CONCURRENCY_LIMIT", 50, minimum=1,
                                                maximum=10_000,
                                                integer=True)),
            max_per_process=(int(reader.number("SENDER_CONCURRENCY", 0, minimum=1, integer=True))
                             or None),
            poll_seconds=reader.number("SENDER_POLL_SECONDS", 1.0, minimum=0.01),
            max_attempts=int(reader.number("SEND_MAX_ATTEMPTS", 10, minimum=1, integer=True)),
            backoff_seconds=reader.number("SEND_BACKOFF_SECONDS", 1.0, minimum=0.0),
            backoff_max_seconds=reader.number("SEND_BACKOFF_MAX_SECONDS", 300.0, minimum=0.0),
            # A sender holds a reply longer than any one API call can take (timeout, then
            # the crash-recovery lookup), so a live sender never loses its lease.
            lease_seconds=reader.duration("SEND_LEASE", 0) or int(2 * http_timeout + 30),
            settle_seconds=settle_seconds(reader, http_timeout)),
        jobs=JobSettings(
            retention_seconds=reader.duration("RETENTION", 30 * 86400),
            text_retention_seconds=reader.duration("MESSAGE_TEXT_RETENTION", 30 * 86400),
            prune_interval_seconds=reader.duration("PRUNE_INTERVAL", 3600),
            catch_up_interval_seconds=reader.duration("CATCH_UP_INTERVAL", 0),
            catch_up_window_seconds=reader.duration("CATCH_UP_WINDOW", 2 * 3600),
            catch_up_max_conversations=int(
                reader.number("CATCH_UP_MAX_CONVERSATIONS", 200, minimum=1, integer=True))),
        instance_dir=instance_dir,
        log_level=reader.choice("LOG_LEVEL", LOG_LEVELS, "INFO"),
        observability=ObservabilitySettings(
            log_format=_log_format(reader),
            metrics_port=(int(reader.number("METRICS_PORT", 0, minimum=1, maximum=65535,
                                            integer=True))
                          or None),
            metrics_host=reader.text("METRICS_HOST") or "127.0.0.1",
            multiproc_dir=reader.folder("PROMETHEUS_MULTIPROC_DIR")),
        answer_model=answer_model_settings(reader),
    )
    if problems:
        raise ConfigError(problems)
    return settings


def _masked(url: str) -> str:
    """The URL with whatever stands between '//' and its last '@' hidden: a password with
    an unescaped '/', '?' or '#' ends urlsplit's netloc before its '@'."""
    head, at, host = url.rpartition("@")
    if not at:
        return url
    scheme = head.partition("//")[0] + "//" if "//" in head else ""
    return f"{scheme}***@{host}"


def database_url_problem(url: str) -> str | None:
    """What keeps SQLAlchemy from using the URL, found now rather than as a traceback in
    every worker (a port that is no number, an unknown query value), or what would make
    it useless: an in-memory SQLite database, empty in each process and lost with it. The
    message never quotes the URL, which may hold a password."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        parsed.get_dialect()().create_connect_args(parsed)  # reads the port and the query
    except Exception as exc:  # noqa: BLE001 - whatever the URL's parsers raise
        reason = ("a port that is not a number" if "int()" in str(exc) else
                  f"{type(exc).__name__} (check its port and its ?query values)")
        return f"DATABASE_URL cannot be read: {reason}"
    if parsed.host and "@" in parsed.host:
        return ("DATABASE_URL: the host has an '@' in it: write an '@' in the user name or "
                "password as %40")
    if parsed.get_backend_name() == "sqlite" and (
            parsed.database in (None, "") or ":memory:" in parsed.database
            or parsed.query.get("mode") == "memory"):
        return ("DATABASE_URL: an in-memory SQLite database is empty in every process and "
                "lost when it stops: give a file, sqlite:////path/to/bot.sqlite3")
    return None


def _sqlite_folder(url: str) -> Path | None:
    """The folder of an sqlite:/// URL's file (None: in memory, not SQLite, or a path of
    an unknown home, which load_settings has named already)."""
    path = url.split(":///", 1)[1].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    try:
        return Path(path).expanduser().resolve().parent if path and path != ":memory:" else None
    except RuntimeError:
        return None


def handoff_phrases(reader: _Reader) -> tuple[str, ...]:
    """HANDOFF_PHRASES: comma-separated (default: DEFAULT_HANDOFF_PHRASES); `none`: none."""
    if reader.text("HANDOFF_PHRASES").lower() == NO_PHRASES:
        return ()
    return tuple(reader.csv("HANDOFF_PHRASES")) or DEFAULT_HANDOFF_PHRASES


def answer_model_settings(reader: _Reader) -> AnswerModelSettings:
    """ANSWER_MODEL_*: off unless ANSWER_MODEL_URL is set, which then needs ANSWER_MODEL."""
    url = reader.url("ANSWER_MODEL_URL")
    model = reader.text("ANSWER_MODEL")
    if url and not model:
        reader.problems.append("ANSWER_MODEL is missing: ANSWER_MODEL_URL needs the model's "
                               "name (e.g. gpt-4o-mini, llama3.1:8b)")
    return AnswerModelSettings(
        url=url, model=model, key=reader.text("ANSWER_MODEL_KEY"),
        timeout=reader.number("ANSWER_MODEL_TIMEOUT", 8.0, minimum=0.1, maximum=60),
        max_per_conversation=int(reader.number("ANSWER_MODEL_MAX_PER_CONVERSATION", 20,
                                               minimum=1, integer=True)),
        max_per_day=int(reader.number("ANSWER_MODEL_MAX_PER_DAY", 1000, minimum=1,
                                      integer=True)))


def settle_seconds(reader: _Reader, http_timeout: float) -> float:
    """SEND_SETTLE_SECONDS: 60 s by default (twice TWILIO_HTTP_TIMEOUT if that is more).

    It must exceed TWILIO_HTTP_TIMEOUT: it counts from the moment the create began, so a
    shorter one would be over before the call had even timed out, and the retry would
    send again at once while the abandoned create may still land at Twilio.
    """
    default = max(60.0, 2 * http_timeout)
    settle = reader.number("SEND_SETTLE_SECONDS", default, minimum=0.1)
    if settle <= http_timeout:
        reader.problems.append(
            f"SEND_SETTLE_SECONDS must be more than TWILIO_HTTP_TIMEOUT ({http_timeout:g}): "
            f"a create abandoned after the timeout may still land later, got {settle:g}")
        return default
    return settle


def log_format(env: Mapping[str, str]) -> str:
    """LOG_FORMAT alone, as the settings read it (`text` or `json`; `text` when it is
    neither: the app then refuses to start, naming it). For gunicorn's master, which
    formats its own lines before any app is loaded."""
    return _log_format(_Reader(env, []))


def _log_format(reader: _Reader) -> str:
    return reader.choice("LOG_FORMAT", LOG_FORMATS, "TEXT").lower()


def file_path(raw: str) -> Path:
    """A setting's file as the app opens it: `~` expanded, absolute, links resolved (so
    gunicorn's master and its workers name RESPONDER_RULES the same way)."""
    return Path(raw.strip()).expanduser().resolve()


class _Reader:
    """Read one kind of value per call, noting problems instead of raising."""

    def __init__(self, env: Mapping[str, str], problems: list[str]):
        self.env = env
        self.problems = problems

    def text(self, name: str) -> str:
        return (self.env.get(name) or "").strip()

    def reply(self, name: str) -> str:
        """A reply's text: it must fit an SMS (Twilio refuses a longer body, error 21617;
        app.autoreply.names.SMS_MAX_CHARS)."""
        raw = self.text(name)
        if len(raw) > REPLY_MAX_CHARS:
            self.problems.append(f"{name} has {len(raw):,} characters; an SMS takes at most "
                                 f"{REPLY_MAX_CHARS:,} (Twilio error 21617)")
        return raw

    def secret(self, name: str, min_length: int) -> str:
        """A password-like token: empty, or at least `min_length` characters (its
        length is named, never the value)."""
        raw = self.text(name)
        make = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        if raw and len(raw) < min_length:
            self.problems.append(
                f"{name} must be at least {min_length} characters (it has {len(raw)}); {make}")
        elif raw and not (raw.isascii() and raw.isprintable()):
            # An HTTP header carries Latin-1, not UTF-8: such a token could never match
            # a bearer header, though it worked as the dashboard's password.
            self.problems.append(f"{name} must be printable ASCII characters; {make}")
        return raw

    def sid(self, name: str, pattern: re.Pattern, shape: str) -> str | None:
        raw = self.text(name)
        if raw and not pattern.fullmatch(raw):
            self.problems.append(f"{name} must be {shape}, got {raw!r}")
        return raw or None

    def path(self, name: str) -> Path | None:
        raw = self.text(name)
        if not raw:
            return None
        try:
            path = file_path(raw)
        except (RuntimeError, ValueError, OSError) as exc:  # ~nosuchuser, a NUL byte
            self.problems.append(f"{name}: cannot use the path {raw!r}: {exc}")
            return None
        if not path.is_file():
            self.problems.append(f"{name}: no such file {raw!r}")
            return None
        return path

    def folder(self, name: str) -> Path | None:
        """A folder that may not exist yet (it is created): `~` expanded, absolute."""
        raw = self.text(name)
        try:
            return file_path(raw) if raw else None
        except (RuntimeError, ValueError, OSError) as exc:  # ~nosuchuser, a NUL byte
            self.problems.append(f"{name}: cannot use the path {raw!r}: {exc}")
            return None

    def csv(self, name: str) -> list[str]:
        return [part.strip() for part in self.text(name).split(",") if part.strip()]

    def number(self, name, default, *, minimum=None, maximum=None, integer=False):
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw) if integer else float(raw)
            if not math.isfinite(value):  # float() takes "nan" and "inf"
                raise ValueError(raw)
        except ValueError:
            kind = "an integer" if integer else "a number"
            self.problems.append(f"{name} must be {kind}, got {raw!r}")
            return default
        if minimum is not None and value < minimum:
            self.problems.append(f"{name} must be at least {minimum}, got {raw!r}")
            return default
        # Past a billion, no count, size or number of seconds here means anything, and
        # the largest ones overflowed the database's integers once they were in use.
        maximum = min(maximum, MAX_NUMBER) if maximum is not None else MAX_NUMBER
        if value > maximum:
            self.problems.append(f"{name} must be at most {maximum:,}, got {raw!r}")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        raw = self.text(name).upper() or default
        if raw not in choices:
            self.problems.append(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
            return default
        return raw

    def url(self, name: str, *, origin_only: bool = False, raw: str | None = None) -> str | None:
        raw = (self.text(name) if raw is None else raw.strip()).rstrip("/")
        if not raw:
            return None
        try:
            parts = urlsplit(raw)
        except ValueError:  # "http://[::1/x": an unclosed IPv6 host
            self.problems.append(f"{name} must be an http(s):// URL")
            return None
        shown = _masked(raw)  # never echo a password
        try:
            parts.port  # noqa: B018 - raises for a port that is not 0-65535
        except ValueError:
            self.problems.append(f"{name} has a port that is not a number from 0 to 65535, "
                                 f"got {shown!r}")
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problems.append(f"{name} must be an http(s):// URL, got {shown!r}")
            return None
        if "@" in raw and not origin_only:  # it would be logged with the URL
            self.problems.append(f"{name} must not hold a user name or password (the "
                                 f"account's SID and token are sent apart), got {shown!r}")
            return None
        if origin_only and (parts.path or "?" in raw or "#" in raw or "@" in parts.netloc):
            self.problems.append(
                f"{name} must be an origin like https://bot.example.com (no path, query, "
                f"fragment or user name), got {shown!r}"
            )
            return None
        return raw

    def duration(self, name: str, default: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            return parse_duration(raw)
        except ValueError as exc:
            self.problems.append(f"{name}: {exc}")
            return default


_DURATION = re.compile(r"([0-9]+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_DAYS = 36500  # 100 years: longer is a typo, and past what a datetime holds


def is_duration(text: str) -> bool:
    """Whether `text` is shaped like a duration (digits, then s, m, h or d)."""
    return _DURATION.fullmatch(text.strip().lower()) is not None


def parse_duration(text: str) -> int:
    """Parse '90', '90s', '15m', '2h' or '7d' into seconds (at most MAX_DURATION_DAYS)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"expected a duration like 90s, 15m, 2h or 7d, got {text[:40]!r}")
    digits, unit = match.groups()
    seconds = int(digits) * _UNITS[unit] if len(digits) <= 12 else None
    if seconds is None or seconds > MAX_DURATION_DAYS * 86400:
        raise ValueError(f"a duration is at most {MAX_DURATION_DAYS}d (100 years), "
                         f"got {text[:40]!r}")
    return seconds
