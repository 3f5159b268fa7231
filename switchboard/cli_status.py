"""Pieces of ``switchboard status``: the config audit, the config versions each process runs and the
rate-limit schedules, read from Redis and printed as tables (the command itself is in ``switchboard.cli``)."""

from __future__ import annotations

import click


def echo_rate_limits(schedules: list[dict]) -> None:
    if not schedules:
        return
    click.echo(f"{'RATE LIMIT':<20} {'SCHEDULE':<34} {'LANE':<8} {'RATE/S':>8} {'NOW/S':>8} {'FACTOR':>6} "
               f"{'BOOKED':>8}")
    for s in schedules:
        click.echo(f"{s['limit']:<20} {s['key']:<34} {s['lane']:<8} {s['configured_rate']:>8g} "
                   f"{s['effective_rate']:>8g} {s['factor']:>6g} {s['booked_ahead_s']:>7g}s")


def config_audit(rt) -> dict:  # noqa: ANN001 - tasks.runtime.Runtime, imported late
    from switchboard.config_audit import ConfigAudit

    audit = ConfigAudit(rt.redis, rt.keys.prefix)
    return {"entities": audit.count(), "recent": audit.list(20)}


def config_versions(rt) -> dict:  # noqa: ANN001 - tasks.runtime.Runtime, imported late
    from switchboard.config_reload import content_version
    from switchboard.config_watch import read_versions

    return {"files_here": content_version(rt.settings.config_dir),
            "processes": read_versions(rt.redis, rt.keys.prefix)}


def echo_config_versions(versions: dict | None) -> None:
    """One line per running config version: which roles run it, and whether it is the files here."""
    if not versions:
        return
    by_version: dict[str, dict[str, int]] = {}
    for p in versions["processes"]:
        roles = by_version.setdefault(p["version"], {})
        roles[p["role"]] = roles.get(p["role"], 0) + 1
    click.echo(f"config files here: version {versions['files_here']}")
    for version, roles in sorted(by_version.items()):
        note = "" if version == versions["files_here"] else "  (differs from the files here)"
        click.echo(f"  running {version}: " + ", ".join(f"{r} x{n}" for r, n in sorted(roles.items())) + note)
