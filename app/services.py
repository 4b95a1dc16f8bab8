"""The app's services, typed, in one container, reached through one function.

    services()            the current app's Services (inside a request or CLI command)
    services(app)         a given app's

Built once by the factory; nothing looks a service up by a string key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, current_app
from twilio.request_validator import RequestValidator

from config import Settings

from .autoreply import Policy
from .compose.composer import Composer
from .delivery.sender import Sender
from .jobs.catchup import CatchUp
from .jobs.periodic import Jobs
from .jobs.supervisor import Supervisor
from .pipeline.processor import Processor
from .store.database import Database
from .timeline.counters import HourlyCounts
from .twilio.interface import Conversations

_KEY = "conversations_bot"


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    client: Conversations  # the blocking client (catch-up, tools)
    policy: Policy  # the auto-reply policy (settings and rules file)
    processor: Processor
    sender: Sender
    catch_up: CatchUp
    jobs: Jobs
    counts: HourlyCounts  # duplicates and signature failures per hour
    supervisor: Supervisor  # this process's background work
    validator: RequestValidator  # checks X-Twilio-Signature
    signing_token: str = field(repr=False)  # the Auth Token, or the development token
    composer: Composer | None = None  # composes deferred replies (debounce, answer model)

    def install(self, app: Flask) -> None:
        app.extensions[_KEY] = self


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions[_KEY]
