"""Celery process hooks for live config reload (see ``switchboard.config_watch``).

Which process gets SIGHUP, and what it does:

- a worker's main process: Celery installs "SIGHUP = re-exec the worker" (``celery.apps.worker.
  install_worker_restart_handler``, from ``install_platform_tweaks`` after ``celeryd_after_setup``), so we
  replace it at ``worker_ready``, the first hook after that. Ours asks every process to reload (the
  ticker increments ``<prefix>config:generation``): the pool children never receive a ``kill -HUP
  <main pid>``, they see the generation move within a second. Until ``worker_ready`` Celery's own
  handler is in place (a SIGHUP during start-up still restarts).
- a pool child: after ``worker_process_init`` billiard makes SIGHUP end the child (``reset_signals``
  overrides any handler but SIG_IGN), so a SIGHUP sent to the whole process group would replace the
  pool. Children ignore it: the main process got it too, and they follow the generation it sets.
- beat (standalone, or embedded with ``-B``): SIGHUP would terminate it; it asks every process to reload.

Each of these processes runs the ticker, so it reloads and reports its version even while idle.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from celery.signals import beat_init, worker_process_init, worker_ready

from switchboard.config import ConfigError
from switchboard.config_watch import Watcher, process_watcher

log = logging.getLogger("switchboard.config")


def _follow(role: str, on_sighup: str) -> None:
    """Run the ticker; SIGHUP: ``broadcast`` (reload every process) or ``ignore``."""
    try:
        watcher = process_watcher()
    except ConfigError as exc:  # started on an invalid config: tasks fail naming it, as before
        log.error("config invalid at start, not watching it: %s", "; ".join(str(exc).splitlines()))
        return
    watcher.start_ticker(role)
    _on_sighup(watcher, on_sighup)


def _on_sighup(watcher: Watcher, action: str) -> None:
    def reload_config(signum: int, frame: Any) -> None:
        watcher.request(broadcast=True)  # flags only: the ticker does the I/O and the logging

    try:
        signal.signal(signal.SIGHUP, reload_config if action == "broadcast" else signal.SIG_IGN)
    except ValueError:  # not the main thread: say so (Celery's own wrapper would stay silent)
        log.error("SIGHUP handler not installed (not in the main thread): SIGHUP keeps its previous meaning")


@worker_ready.connect
def _worker_main_process(**_: Any) -> None:
    _follow("worker-main", "broadcast")


@worker_process_init.connect
def _pool_child(**_: Any) -> None:
    _follow("worker", "ignore")


@beat_init.connect
def _beat(**_: Any) -> None:
    _follow("beat", "broadcast")
