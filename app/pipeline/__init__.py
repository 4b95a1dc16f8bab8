"""From a verified request to a committed decision: Event, router, processor, claims, outcomes, state reads."""
