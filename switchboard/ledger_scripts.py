"""The outcome ledger's atomic steps, as Lua scripts run by ``switchboard.ledger.Ledger``.

Each is one round trip that reads and writes an event's ledger hash (and its counters and the in-flight index)
together or not at all; the Python side (``Ledger``) chooses the keys and arguments and reads the answers.
"""

from __future__ import annotations

from switchboard.lua import lua_function

# Lua so that setting the outcome and bumping its counter happen together or not at all. The event leaves the
# in-flight index (KEYS[3], the stalled sweep's); what the sweep would re-publish from (the body, the routed
# alert) is dropped once nothing can bring the event back (deferred and dead-lettered events can be released or
# replayed: they keep it until the ledger entry expires).
SET_OUTCOME = """
if redis.call('HSETNX', KEYS[1], 'outcome', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'reason', ARGV[2], 'finished_at', ARGV[3])
  redis.call('INCR', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[4])
  if ARGV[1] ~= 'deferred' and ARGV[1] ~= 'dead_lettered' then
    redis.call('HDEL', KEYS[1], 'body', 'routed')
  end
  return 1
end
return 0
"""


# Record one target's result once: a second run for the same target (two copies of one message) must not
# count it again, or ``pending`` would reach 0 while another target is still on its way. -1: already there.
FINISH_TARGET = """
if redis.call('HSETNX', KEYS[1], 'target:' .. ARGV[1], ARGV[2]) == 0 then
  return -1
end
return redis.call('HINCRBY', KEYS[1], 'pending', -1)
"""


# Every target has its result: set the event's one outcome from them, as ``SET_OUTCOME`` does (a function
# ``set_outcome`` in the scripts below). dead_lettered if any target's result is not dispatched.
# KEYS: ledger hash, dispatched counter, dead_lettered counter, in-flight index; ARGV: now, event id.
# Returns {outcome, reason, 1 if recorded / 0 if the event already had an outcome}.
SETTLE = """
local failed, all = {}, {}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 7) == 'target:' then
    local target = string.sub(fields[i], 8)
    all[#all + 1] = target
    if cjson.decode(fields[i + 1])['result'] ~= 'dispatched' then failed[#failed + 1] = target end
  end
end
table.sort(failed)
table.sort(all)
local outcome, reason, counter = 'dispatched', 'delivered to ' .. table.concat(all, ', '), KEYS[2]
if #failed > 0 then
  outcome, reason, counter = 'dead_lettered', 'undeliverable to ' .. table.concat(failed, ', '), KEYS[3]
end
return {outcome, reason, set_outcome({KEYS[1], counter, KEYS[4]}, {outcome, reason, ARGV[1], ARGV[2]})}
"""
SETTLE_SCRIPT = lua_function("set_outcome", SET_OUTCOME) + SETTLE

# A target's result and, if it was the last pending one, the event's outcome: one round trip where it was
# three (finish, read the results, set the outcome). KEYS as ``SETTLE``; ARGV: target, result entry, now,
# event id. Returns {pending} (-1: this target was already recorded), or {0, outcome, reason, recorded}.
FINISH = lua_function("finish_target", FINISH_TARGET) + lua_function("set_outcome", SET_OUTCOME) + \
    lua_function("settle", SETTLE) + """
local pending = finish_target({KEYS[1]}, {ARGV[1], ARGV[2]})
if pending ~= 0 then return {pending} end
local settled = settle(KEYS, {ARGV[3], ARGV[4]})
return {0, settled[1], settled[2], settled[3]}
"""

# Reopen one dead-lettered target for a replay: the target becomes pending again and, if the event's
# outcome was dead_lettered, the outcome is withdrawn (its counter too) so the replay can set it anew.
REOPEN = """
if ARGV[1] ~= '' then
  local result = redis.call('HGET', KEYS[1], 'target:' .. ARGV[1])
  if not result or cjson.decode(result)['result'] ~= 'dead_lettered' then
    return 0
  end
  redis.call('HDEL', KEYS[1], 'target:' .. ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'pending', 1)
elseif redis.call('HGET', KEYS[1], 'outcome') ~= 'dead_lettered' then
  return 0
end
if redis.call('HGET', KEYS[1], 'outcome') == 'dead_lettered' then
  redis.call('HDEL', KEYS[1], 'outcome', 'reason', 'finished_at')
  redis.call('DECR', KEYS[2])
end
redis.call('HINCRBY', KEYS[1], 'replays', 1)
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 1
"""


# Withdraw the outcome if it is still ARGV[1] (a deferred event being released): the event goes on and
# will set its next outcome; its counter is decremented so accepted == sum of outcomes stays true.
WITHDRAW = """
if redis.call('HGET', KEYS[1], 'outcome') ~= ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 'outcome', 'reason', 'finished_at')
redis.call('DECR', KEYS[2])
redis.call('HINCRBY', KEYS[1], 'releases', 1)
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 1
"""


# The receiver's publish failed: un-accept the event (drop its record, its count, its index entry and the
# idempotency keys it claimed, KEYS[4..]) unless a worker already took it, which means the broker had the
# message after all (a publisher confirm lost with its connection). 1: un-accepted; 0: taken, keep it.
UNACCEPT = """
if redis.call('HEXISTS', KEYS[1], 'taken') == 1 then
  return 0
end
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('DECR', KEYS[2])
end
redis.call('ZREM', KEYS[3], ARGV[1])
for i = 4, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1
"""

# A routed event's targets (what its dispatches settle against) and routed alert (what the stalled sweep
# publishes again if a dispatch message is lost), unless an earlier run of its route set them: a redelivered
# route keeps the first routing.
ROUTE_ONCE = """
if redis.call('HSETNX', KEYS[1], 'pending', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'targets', ARGV[2], 'routed', ARGV[3])
return 1
"""

# A worker starts an event: only one the receiver accepted and did not un-accept (1), marked taken.
TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'taken', '1')
return 1
"""
