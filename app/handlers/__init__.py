"""Event handlers, one module per feature, composed into the app's router here."""

from ..pipeline.router import Router
from . import messages, receipts


def build_router() -> Router:
    router = Router()
    router.add(messages.router)
    router.add(receipts.router)
    return router
