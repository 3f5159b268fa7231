"""The ingress baseline: a bare Flask app answering 202 to ``POST /webhooks/<source>``, served by the same
gunicorn settings as the receiver (``gunicorn bench.bare_app:app``)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from flask import Flask, Response, jsonify, request

from switchboard.config import load_config
from switchboard.settings import load_settings

app = Flask("bare")
# The Procfile's worker class reads the receiver's config (service.read_timeout_s) from here: loaded once at
# import, so the baseline pays nothing per request for it.
app.extensions["switchboard"] = SimpleNamespace(config=load_config(load_settings().config_dir))


@app.post("/webhooks/<source>")
def receive(source: str) -> Response:
    request.get_data()  # read the body, as the receiver does
    response = jsonify({"status": "accepted", "event_id": uuid.uuid4().hex})
    response.status_code = 202
    return response


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})
