"""The Conversations clients are interchangeable: live, dry-run, blocking and async have
the same methods with the same parameters (app/twilio/interface.py)."""

import inspect

import pytest

from app.twilio.async_client import AsyncConversationsClient, AsyncDryRunClient
from app.twilio.client import ConversationsClient, DryRunClient
from app.twilio.interface import AsyncConversations, Conversations


def methods(cls) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(value) for name, value in vars(cls).items()
            if callable(value) and not name.startswith("_")}


@pytest.mark.parametrize("client, protocol", [
    (ConversationsClient, Conversations),
    (DryRunClient, Conversations),
    (AsyncConversationsClient, AsyncConversations),
    (AsyncDryRunClient, AsyncConversations),
], ids=lambda c: c.__name__)
def test_each_client_has_the_protocols_methods(client, protocol):
    """Every method of its protocol, with the same parameters, awaited where the
    protocol's is, and a `dry_run` flag."""
    wanted = methods(protocol)
    found = {name: inspect.signature(getattr(client, name)) for name in wanted
             if hasattr(client, name)}
    assert found == wanted
    for name in wanted:
        assert (inspect.iscoroutinefunction(getattr(client, name))
                == inspect.iscoroutinefunction(getattr(protocol, name))), name
    assert isinstance(client.dry_run, bool)


def test_the_blocking_and_async_protocols_are_twins():
    """The async protocol is the blocking one, awaited: a method added to one is added
    to the other."""
    assert methods(Conversations) == methods(AsyncConversations)
    assert all(inspect.iscoroutinefunction(m) for m in vars(AsyncConversations).values()
               if callable(m) and not getattr(m, "__name__", "_").startswith("_"))
