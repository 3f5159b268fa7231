"""gunicorn entry point: ``gunicorn webhook_app.wsgi:app``.

Each gunicorn worker imports this (no ``--preload``) and runs a config-watch ticker, so it reloads
changed config (polling, ``switchboard config reload``) and reports its version even while idle.
"""

from switchboard.logs import configure
from webhook_app.app import create_app

configure()
app = create_app()
app.extensions["switchboard"].config_watch.start_ticker("receiver")
