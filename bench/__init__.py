"""Switchboard's benchmark suite (issue "Performance"): ``make bench`` / ``switchboard bench``.

Starts what it needs on loopback (its own redis-server, a RabbitMQ vhost, the vendor sandbox, gunicorn,
Celery pools), measures every figure beside a baseline taken in the same run on the same broker and
worker settings, prints a table and writes ``bench/results.json``. Modules: ``load`` (HTTP load
generator), ``stack`` (the processes), ``scenario`` (the signed webhooks and the bench config),
``phases`` (ingress, pipeline, latency), ``flow`` (flow control), ``memory`` (RSS over 100,000 events),
``report`` (table and JSON), ``run`` (the entry point).
"""
