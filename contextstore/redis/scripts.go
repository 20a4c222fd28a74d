package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts that make each store operation atomic. Redis runs a
// script to completion before anything else, so a script sees and leaves a
// consistent session. Scripts name keys they derive from the prefix (tag
// indexes, per-session keys in Sessions) without declaring them, which a
// standalone Redis (or Sentinel) allows and Redis Cluster does not.
//
// Numbers: Lua's are doubles, exact up to 2^53 (µs timestamps are about
// 2^51), but Lua turns them into strings with "%.14g", which would lose
// digits; every number that becomes a string goes through str ("%d").

// appendScript appends one entry.
//
// KEYS: meta, tags, log, tagidx, idx:updated, idx:expires, clock.
// ARGV: id, prefix, ttl (ms, 0 for none), op (unique per Append call), the
// entry's record without its time (see record.go), watch channel, then the
// entry's tags as key, value, key, value...
//
// The stream entry is {e: "<time> " .. record}; the message published is
// "<seq> <gen> <time> " .. record, gen being the session's created time.
//
// Returns {seq, time µs, created µs, expires ms (0 for none)} as strings.
var appendScript = goredis.NewScript(`
local meta, tags, log, tagidx, updated, expiring, clock = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, prefix, ttl, op = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

-- A retry of an append that already ran (its reply was lost with the
-- connection) returns that append's result rather than appending twice.
if redis.call('HGET', meta, 'op') == op then
  return redis.call('HMGET', meta, 'seq', 'updated', 'created', 'expires')
end

local function str(n) return string.format('%d', n) end
local function tagkey(k, v) return prefix .. 'tag:' .. #k .. ':' .. k .. '=' .. v end

-- One clock per prefix, strictly increasing: every replica's appends get
-- distinct times, so Sessions orders (and pages) sessions without ties.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', clock) or '0')
if now <= last then now = last + 1 end
local nows = str(now)
redis.call('SET', clock, nows)

local seq = redis.call('HINCRBY', meta, 'seq', 1)
local created
if seq == 1 then
  -- A new session, or one deleted or expired: drop what is left of a
  -- previous one (its tag index entries, which do not expire).
  for _, k in ipairs(redis.call('SMEMBERS', tagidx)) do redis.call('ZREM', k, id) end
  redis.call('DEL', tagidx, tags, log)
  created = nows
else
  created = redis.call('HGET', meta, 'created')
end

for i = 7, #ARGV, 2 do
  local k, v = ARGV[i], ARGV[i + 1]
  local old = redis.call('HGET', tags, k)
  if old ~= v then
    if old then
      local ok = tagkey(k, old)
      redis.call('ZREM', ok, id)
      redis.call('SREM', tagidx, ok)
    end
    redis.call('HSET', tags, k, v)
    redis.call('SADD', tagidx, tagkey(k, v))
  end
end

-- Recency: the session index and each of the session's tag indexes are
-- sorted sets scored by the time of the last append.
redis.call('ZADD', updated, nows, id)
local all = redis.call('HGETALL', tags)
for i = 1, #all, 2 do redis.call('ZADD', tagkey(all[i], all[i + 1]), nows, id) end

local rec = nows .. ' ' .. ARGV[5]
redis.call('XADD', log, str(seq) .. '-0', 'e', rec)

local exps = '0'
if ttl > 0 then
  exps = str(math.floor((now + 999) / 1000) + ttl)
end
redis.call('HSET', meta, 'created', created, 'updated', nows, 'expires', exps, 'op', op)
if ttl > 0 then
  -- Every key of the session dies at the same millisecond.
  redis.call('PEXPIREAT', meta, exps)
  redis.call('PEXPIREAT', tags, exps)
  redis.call('PEXPIREAT', log, exps)
  redis.call('ZADD', expiring, exps, id)
elseif redis.call('ZREM', expiring, id) == 1 then
  -- A store without a TTL appends to a session that had one.
  redis.call('PERSIST', meta)
  redis.call('PERSIST', tags)
  redis.call('PERSIST', log)
end

redis.call('PUBLISH', ARGV[6], str(seq) .. ' ' .. created .. ' ' .. rec)
return {str(seq), nows, created, exps}
`)

// sinceScript reads a watched session's entries after a position.
//
// KEYS: meta, log. ARGV: gen (created µs), seq, count.
// Returns {} for a missing session, else {gen, XRANGE reply}.
var sinceScript = goredis.NewScript(`
local gen = redis.call('HGET', KEYS[1], 'created')
if not gen then return {} end
local after = '0'
if gen == ARGV[1] then after = ARGV[2] end
return {gen, redis.call('XRANGE', KEYS[2], '(' .. after .. '-0', '+', 'COUNT', ARGV[3])}
`)

// sessionsScript lists sessions, most recently updated first.
//
// ARGV: prefix, the score to stay below ("+inf" or "(µs"), limit, then the
// wanted tags as key, value, key, value...
//
// With tags, it walks the smallest of the wanted tags' indexes and checks
// every tag against the session's tags hash, so that stale index entries
// (of a tag value since overwritten, or of an expired session) never
// match. Sessions whose meta hash has expired are skipped.
//
// Returns a list of {id, created, updated, seq, expires, {tag k, v, ...}}.
var sessionsScript = goredis.NewScript(`
local prefix, maxs, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local function tagkey(k, v) return prefix .. 'tag:' .. #k .. ':' .. k .. '=' .. v end
local idx = prefix .. 'idx:updated'
local tagged = #ARGV > 3
if tagged then
  local best, bestn
  for i = 4, #ARGV, 2 do
    local k = tagkey(ARGV[i], ARGV[i + 1])
    local n = redis.call('ZCARD', k)
    if n == 0 then return {} end
    if not best or n < bestn then best, bestn = k, n end
  end
  idx = best
end
local out = {}
local offset = 0
local batch = math.max(limit, 50)
while #out < limit do
  local ids = redis.call('ZRANGE', idx, maxs, '-inf', 'BYSCORE', 'REV', 'LIMIT', offset, batch)
  offset = offset + #ids
  for _, id in ipairs(ids) do
    local m = redis.call('HMGET', prefix .. 'meta:' .. id, 'created', 'updated', 'seq', 'expires')
    if m[2] then
      local tags = prefix .. 'tags:' .. id
      local ok = true
      if tagged then
        for i = 4, #ARGV, 2 do
          if redis.call('HGET', tags, ARGV[i]) ~= ARGV[i + 1] then ok = false break end
        end
      end
      if ok then
        out[#out + 1] = {id, m[1], m[2], m[3], m[4], redis.call('HGETALL', tags)}
        if #out == limit then break end
      end
    end
  end
  if #ids < batch then break end
end
return out
`)

// deleteScript removes a session.
//
// KEYS: meta, tags, log, tagidx, idx:updated, idx:expires. ARGV: id.
var deleteScript = goredis.NewScript(`
for _, k in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('ZREM', k, ARGV[1]) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
`)

// sweepScript removes the index entries of expired sessions (their own
// keys expire by themselves).
//
// KEYS: idx:expires, idx:updated. ARGV: prefix, batch size.
// Returns how many sessions it removed.
var sweepScript = goredis.NewScript(`
local prefix = ARGV[1]
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. string.format('%d', nowms), 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local n = 0
for _, id in ipairs(ids) do
  local exp = redis.call('HGET', prefix .. 'meta:' .. id, 'expires')
  if not exp then
    local tagidx = prefix .. 'tagidx:' .. id
    for _, k in ipairs(redis.call('SMEMBERS', tagidx)) do redis.call('ZREM', k, id) end
    redis.call('DEL', tagidx, prefix .. 'log:' .. id, prefix .. 'tags:' .. id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    n = n + 1
  elseif exp == '0' then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('ZADD', KEYS[1], exp, id)
  end
end
return n
`)
