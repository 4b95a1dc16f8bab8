"""Event handlers, one module per feature, composed into the app's router here."""

from ..router import Router
from . import delivery, messages


def build_router() -> Router:
    router = Router()
    router.add(messages.router)
    router.add(delivery.router)
    return router
