"""Observability: Prometheus metrics (`metrics`, `collectors`, `multiprocess`,
`exposition`) and logs that follow a conversation across processes (`logs`).

Imports nothing above the store: every layer may count and log through it.
"""
