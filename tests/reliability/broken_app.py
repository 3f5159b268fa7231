"""The deliberately broken variant, for the worker-kill scenario only: the production Celery app with
``acks_late`` and ``reject_on_worker_lost`` turned off, so a message is acknowledged when its task starts.
A worker SIGKILLed mid-task then loses that task. Started as ``celery -A tests.reliability.broken_app``
by tests/reliability/test_faults_worker.py; production code never imports it."""

from tasks.app import app

# Set before the worker imports the task modules (app.conf.imports), so every task binds with these.
app.conf.task_acks_late = False
app.conf.task_reject_on_worker_lost = False

__all__ = ["app"]
