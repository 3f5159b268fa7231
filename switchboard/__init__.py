"""Switchboard core: settings, configuration, canonical alert, pure pipeline stages and Redis state.

The top-level packages depend on this one and never the other way round:
``webhook_app`` (receiver) -> ``tasks`` (Celery pipeline) -> ``clients`` (vendor HTTP).
"""
