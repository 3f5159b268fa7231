"""gunicorn entry point: ``gunicorn webhook_app.wsgi:app``."""

from webhook_app.app import create_app

app = create_app()
