"""FastAGI handlers: thin adapters that parse the request, call a service and answer.

Each feature declares its handlers (``Feature.agi``) and the container
registers them with the core's diagnostics (``Container.agi_router``); the
dialplan reaches them as ``AGI(${KALLIOPE_AGI}/<name>?k=v)``.
"""
