"""gunicorn entry point: ``gunicorn webhook_app.wsgi:app``."""

from switchboard.logs import configure
from webhook_app.app import create_app

configure()
app = create_app()
