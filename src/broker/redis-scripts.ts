/**
 * Lua run atomically inside Redis: a topic's sequence, epoch and history change in one step with the
 * PUBLISH that carries the message, so every node sees the same numbering in the same order and the
 * history stream never disagrees with what was delivered.
 *
 * Keys per topic (the hash tag keeps them on one Redis Cluster slot):
 *   wsgate:{topic}:meta  hash {epoch, seq, last?}  (expires --position-ttl after the last publish or snapshot)
 *   wsgate:{topic}:log   stream, entry id "<seq>-0", field m = the envelope (expires with history TTL)
 * The envelope layout is documented in envelope.ts; cmsgpack writes it as an 8-element array.
 */

/**
 * KEYS: meta, log. ARGV: channel, topic, ts, origin, source, data, history size, history ttl ms,
 * epoch to use if the topic is new, meta ttl ms, "1" to keep the envelope as the topic's latest message
 * (rule lastMessage), the data's format (envelope.ts). Returns the assigned seq.
 */
export const PUBLISH_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[9]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[10])
local msg = cmsgpack.pack({ARGV[2], seq, epoch, tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[12]), ARGV[6]})
local size = tonumber(ARGV[7])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, seq .. '-0', 'm', msg)
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
if ARGV[11] == '1' then redis.call('HSET', KEYS[1], 'last', msg) end
redis.call('PUBLISH', ARGV[1], msg)
return seq
`;

/**
 * A snapshot taken at a cut: reads the position (creating the topic's epoch if new) and the retained
 * entries after \`since\`, and PUBLISHes them to the asking node's own channel. Because the reply travels
 * on the same subscriber connection as the topic's messages, it arrives exactly between the messages
 * numbered up to seq and those after.
 * KEYS: meta, log. ARGV: reply channel, request id, since seq (-1: none), history size, epoch if new,
 * meta ttl ms, "1" to add the latest message. Reply: [request id, seq, epoch, [envelope, …], latest envelope or ""].
 */
export const SNAPSHOT_LUA = `
local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'last')
local epoch = m[1]
local seq = 0
if not epoch then
  epoch = ARGV[5]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
else
  seq = tonumber(m[2])
end
-- A subscribe counts as use: a quiet topic with subscribers keeps its position.
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local entries = {}
local since = tonumber(ARGV[3])
if since >= 0 and since < seq and seq - since <= tonumber(ARGV[4]) then
  local r = redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+')
  for i, e in ipairs(r) do entries[i] = e[2][2] end
end
local last = ''
if ARGV[7] == '1' and m[3] then last = m[3] end
redis.call('PUBLISH', ARGV[1], cmsgpack.pack({ARGV[2], seq, epoch, entries, last}))
return seq
`;

/**
 * A history read: the position (creating the topic's epoch if new) and up to `limit` entries, the newest
 * ones (oldest first), or with \`since\` of the same epoch the first ones after it.
 * KEYS: meta, log. ARGV: limit, since seq (-1: none), since epoch, epoch if new, meta ttl ms.
 * Reply: [seq, epoch, [envelope, …]].
 */
export const HISTORY_LUA = `
local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
local epoch = m[1]
local seq = 0
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
else
  seq = tonumber(m[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local entries = {}
local since = tonumber(ARGV[2])
if since < 0 then
  local r = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[1])
  local n = #r
  for i, e in ipairs(r) do entries[n - i + 1] = e[2][2] end
elseif ARGV[3] == epoch and since < seq then
  local r = redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+', 'COUNT', ARGV[1])
  for i, e in ipairs(r) do entries[i] = e[2][2] end
end
return {seq, epoch, entries}
`;

export const metaKey = (topic: string): string => `wsgate:{${topic}}:meta`;
export const logKey = (topic: string): string => `wsgate:{${topic}}:log`;
export const channelOf = (topic: string): string => `wsgate:m:${topic}`;
/** Control messages between nodes (ControlBus): to all, and to one node. */
export const CONTROL_CHANNEL = 'wsgate:ctl';
export const controlChannel = (nodeId: string): string => `wsgate:ctl:${nodeId}`;
export const nodeChannel = (nodeId: string): string => `wsgate:node:${nodeId}`;
