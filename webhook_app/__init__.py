"""The webhook receiver (Flask): verify, validate, deduplicate, publish, answer. It never calls a vendor."""

from webhook_app.app import create_app

__all__ = ["create_app"]
