"""The Lua scripts of RedisRunRegistry: each step that reads then writes runs atomically on the server.

A run's stream holds its events at ids `0-<seq>`, then the close marker at `1-0` (field `end` = last seq),
so `XRANGE 0-<after+1> +` is "every event after `after`, and the marker once the run ended".
Lease deadlines are Redis server time (ms), so replicas' clocks never matter.
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# The last event's seq (0 if none) and whether the close marker is there.
_TOP = """
local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
local ended, last = false, 0
if top then
  local major, minor = string.match(top[1], '^(%d+)-(%d+)$')
  if major == '0' then
    last = tonumber(minor)
  else
    ended = true
    for i = 1, #top[2], 2 do
      if top[2][i] == 'end' then last = tonumber(top[2][i + 1]) end
    end
  end
end
"""

_END = """
if not ended then
  redis.call('XADD', stream, '1-0', 'end', last)
end
redis.call('PEXPIRE', stream, keep_ms)
redis.call('PEXPIRE', meta, keep_ms)
"""

# KEYS: claim, leases, meta. ARGV: id_run, lease_ms, id_team_agent, id_task, replica.
OPEN = (
    """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
"""
    + _NOW
    + """
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[3], 'agent', ARGV[3], 'task', ARGV[4], 'replica', ARGV[5])
return 1
"""
)

# KEYS: claim, leases. ARGV: id_run, lease_ms. 0 = the lease is lost (taken, expired or reaped).
RENEW = (
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
"""
    + _NOW
    + """
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1
"""
)

# KEYS: stream. ARGV: seq, encoded event, maxlen. 0 = dropped (the run was already ended, e.g. reaped).
PUBLISH = (
    """
local stream = KEYS[1]
"""
    + _TOP
    + """
if ended or last >= tonumber(ARGV[1]) then return 0 end
redis.call('XADD', stream, 'MAXLEN', '~', ARGV[3], '0-' .. ARGV[1], 'e', ARGV[2])
return 1
"""
)

# KEYS: claim, leases, stream, meta. ARGV: id_run, keep_ms.
CLOSE = (
    """
local stream, meta, keep_ms = KEYS[3], KEYS[4], ARGV[2]
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
"""
    + _TOP
    + _END
    + """
return 1
"""
)

# KEYS: claim, leases, stream, meta. ARGV: id_run, keep_ms, encoded Interrupted event.
# 1 = ended here; 0 = renewed, closed or reaped by someone else meanwhile.
REAP = (
    """
local stream, meta, keep_ms = KEYS[3], KEYS[4], ARGV[2]
local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not deadline then return 0 end
"""
    + _NOW
    + """
if tonumber(deadline) > now then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""
    + _TOP
    + """
-- a run whose terminal event went out (its close was lost) only needs the marker
local terminal = false
if top and not ended then
  for i = 1, #top[2], 2 do
    if top[2][i] == 'e' then
      local ok, event = pcall(cjson.decode, top[2][i + 1])
      terminal = ok and (event.event == 'finished' or event.event == 'error' or event.event == 'interrupted')
    end
  end
end
if not ended and not terminal then
  last = last + 1
  redis.call('XADD', stream, '0-' .. last, 'e', ARGV[3])
end
"""
    + _END
    + """
return 1
"""
)

# KEYS: leases. ARGV: 'live' or 'expired'.
LEASES = (
    _NOW
    + """
if ARGV[1] == 'live' then
  return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
"""
)
