"""The configuration a running process uses now, and when it loads the files again.

A ``ConfigHolder`` keeps the last valid ``Config`` and its version (a short hash of the files' contents).
It looks at the files again when

- polling: a fingerprint of the directory (inode, ``mtime_ns`` and size of each file ``load_config``
  reads) differs, checked at most every ``service.config_poll_s`` seconds (0: never);
- asked: ``request()`` (this process got SIGHUP; safe to call from a signal handler), or the shared
  generation counter changed (``switchboard config reload`` or SIGHUP elsewhere; read at most once a second).

Why stat() polling and not inotify: six stat() calls every few seconds cost nothing and see every way a
file is replaced, while inotify needs a platform-specific library and a watch that is lost when an editor
or a Kubernetes ConfigMap swaps the file or its symlinked directory, and sees nothing on NFS.

A valid change is swapped in at once (one attribute assignment: a reader sees the old or the new config,
never a mix). An invalid one keeps the old config, logs every problem (file, key, reason) and is not
tried again until the files change again (or someone asks explicitly).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from switchboard.config import FILES, Config, ConfigError, load_config
from switchboard.metrics import CONFIG_RELOADS

log = logging.getLogger("switchboard.config")
GENERATION_EVERY_S = 1.0  # the shared generation counter is read at most this often
DEFAULT_POLL_S = 5.0

Fingerprint = tuple[tuple[str, int, int, int], ...]


def fingerprint(directory: Path) -> Fingerprint:
    """(name, inode, mtime_ns, size) of every config file; a missing file is (name, 0, 0, -1)."""
    out = []
    for name in sorted(FILES):
        try:
            st = os.stat(directory / name)  # follows symlinks: a ConfigMap's swapped target shows
        except FileNotFoundError:
            out.append((name, 0, 0, -1))
            continue
        out.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


def content_version(directory: Path) -> str:
    """A short hash of every config file's name and bytes: equal files, equal version, on any machine."""
    digest = hashlib.sha256()
    for name in sorted(FILES):
        path = directory / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Loaded:
    config: Config
    version: str


class ConfigHolder:
    """One process's current config; ``check()`` decides whether to load again and does it."""

    def __init__(self, directory: Path, *, loader: Callable[[Path], Config] = load_config,
                 clock: Callable[[], float] = time.monotonic,
                 generation: Callable[[], str | None] | None = None) -> None:
        self.directory = Path(directory)
        self._loader, self._clock, self._generation = loader, clock, generation
        fp = fingerprint(self.directory)
        version = content_version(self.directory)
        # An invalid config at start-up raises: a process does not start on it (nothing older to keep).
        self._loaded = Loaded(loader(self.directory), version)
        self._fp: Fingerprint = fp
        self._bad_fp: Fingerprint | None = None
        self._requested = False
        self._lock = threading.Lock()
        now = clock()
        self._next_poll = now + self.poll_s
        self._gen_seen = self._read_generation()
        self._next_gen = now + GENERATION_EVERY_S

    @property
    def config(self) -> Config:
        return self._loaded.config

    @property
    def version(self) -> str:
        return self._loaded.version

    @property
    def poll_s(self) -> float:
        return float(self._loaded.config.service.get("config_poll_s", DEFAULT_POLL_S))

    def current(self) -> Config:
        """The config to use now (after a check, if one is due)."""
        self.check()
        return self._loaded.config

    def request(self) -> None:
        """Look at the files on the next check whatever the fingerprint says (signal-handler safe)."""
        self._requested = True

    def note_generation(self, generation: str) -> None:
        """This process set the shared generation itself: seeing it later is not a new request."""
        self._gen_seen = generation

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (the parent's may have been held by a thread that is gone)."""
        self._lock = threading.Lock()
        self._requested = False

    def check(self) -> str | None:
        """Reload if due. Returns ``"ok"``, ``"invalid"``, ``"unchanged"``, or None when nothing was due
        (or another thread is checking right now: the caller goes on with the current config)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            now = self._clock()
            asked = self._requested
            by_generation = False
            if self._generation is not None and now >= self._next_gen:
                self._next_gen = now + GENERATION_EVERY_S
                generation = self._read_generation()
                if generation is not None and generation != self._gen_seen:
                    self._gen_seen, by_generation = generation, True
            polled = self.poll_s > 0 and now >= self._next_poll
            if polled:
                self._next_poll = now + self.poll_s
            if not (asked or by_generation or polled):
                return None
            self._requested = False
            fp = fingerprint(self.directory)
            if not (asked or by_generation) and fp in (self._fp, self._bad_fp):
                return None
            result = self._reload(fp, loud=asked)
            self._next_poll = self._clock() + self.poll_s  # the new file's interval counts from now
            return result
        finally:
            self._lock.release()

    def _read_generation(self) -> str | None:
        if self._generation is None:
            return None
        try:
            return self._generation()
        except Exception as exc:  # noqa: BLE001 - Redis down: polling still works; try again later
            log.debug("config generation unreadable: %s", type(exc).__name__)
            return None

    def _reload(self, fp: Fingerprint, loud: bool) -> str:
        old = self._loaded.version
        try:
            version = content_version(self.directory)
            if version == old:
                # touched, or put back as it was: nothing to load (said aloud only when asked directly)
                self._fp, self._bad_fp = fp, None
                (log.info if loud else log.debug)("config unchanged: version %s", old,
                                                  extra={"config_version": old})
                return "unchanged"
            config = self._loader(self.directory)
        except (ConfigError, OSError) as exc:
            self._bad_fp = fp
            problems = str(exc).splitlines() if isinstance(exc, ConfigError) else [f"{type(exc).__name__}: {exc}"]
            CONFIG_RELOADS.labels("invalid").inc()
            log.error("config reload rejected, keeping version %s: %s", old, "; ".join(problems),
                      extra={"config_version": old, "problems": problems})
            return "invalid"
        self._loaded = Loaded(config, version)
        self._fp, self._bad_fp = fp, None
        CONFIG_RELOADS.labels("ok").inc()
        log.info("config reloaded: version %s (was %s)", version, old,
                 extra={"config_version": version, "previous_version": old})
        return "ok"
