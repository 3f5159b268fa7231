"""Composing Redis Lua scripts: a script written to run on its own (with its own KEYS and ARGV) becomes a local
function of a larger script, so one round trip runs several steps atomically with the very text each step runs
alone (the ledger's finish and settle, the receiver's gate, the critical lane of the rate limiter)."""

from __future__ import annotations


def lua_function(name: str, body: str) -> str:
    """``body``, a script of its own, as ``local function <name>(KEYS, ARGV)``: inside it KEYS and ARGV are the
    tables the caller passes, so the script's text needs no change."""
    return f"local function {name}(KEYS, ARGV)\n{body}\nend\n"
