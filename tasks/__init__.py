"""The Celery pipeline: thin tasks around the pure stages of ``switchboard.stages``.

Queues: ``ingest`` (normalize -> dedupe -> enrich -> gate -> route) and
``dispatch.critical|default|bulk`` (one dispatch task per target). Start workers with
``celery -A tasks.app worker -Q <queue>``.
"""
