package redislog

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// ensureLua is shared by the scripts: it returns the tenant's epoch,
// creating the meta hash with a fresh epoch if it is missing. A missing
// hash means first use or lost data; either way any stream left over
// belongs to a dead numbering, so it goes.
//
// KEYS[1] meta, KEYS[2] stream; ARGV[1] candidate epoch.
const ensureLua = `
local function ensure()
  local e = redis.call('HGET', KEYS[1], 'epoch')
  if e then return e end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', 0, 'bytes', 0)
  return ARGV[1]
end
`

// appendScript assigns seqs to a batch, appends it to the stream and
// publishes it to the tenant's channel for followers, all or nothing.
//
// KEYS[3] (optional) the idempotency key. ARGV[2] max events, ARGV[3] max
// bytes (0: none), ARGV[4] idempotency TTL in ms, ARGV[5] the channel,
// ARGV[6...] the bodies (each ending in a newline): each line is
// '{"seq":N,' followed by its body. The message is "EPOCH FIRST\n"
// followed by the lines.
// Returns {duplicate (0/1), first seq, last seq, epoch}.
var appendScript = redis.NewScript(ensureLua + `
if KEYS[3] then
  local prev = redis.call('GET', KEYS[3])
  if prev then
    local f, l, e = string.match(prev, '^(%d+) (%d+) (.+)$')
    return {1, tonumber(f), tonumber(l), e}
  end
end
local epoch = ensure()
local n = #ARGV - 5
local last = redis.call('HINCRBY', KEYS[1], 'seq', n)
local first = last - n + 1
local size = 0
local lines = {}
for i = 1, n do
  local seq = first + i - 1
  local line = '{"seq":' .. seq .. ',' .. ARGV[5 + i]
  size = size + #line
  lines[i] = line
  redis.call('XADD', KEYS[2], seq .. '-0', 'd', line)
end
local total = redis.call('HINCRBY', KEYS[1], 'bytes', size)
local limit = tonumber(ARGV[2])
local maxBytes = tonumber(ARGV[3])
if maxBytes > 0 and total > 0 then
  local byBytes = math.floor(maxBytes / (total / last))
  if byBytes < limit then limit = byBytes end
end
if limit < 1 then limit = 1 end
redis.call('XTRIM', KEYS[2], 'MAXLEN', '~', limit)
if KEYS[3] then
  redis.call('SET', KEYS[3], first .. ' ' .. last .. ' ' .. epoch, 'PX', ARGV[4])
end
redis.call('PUBLISH', ARGV[5], epoch .. ' ' .. first .. '\n' .. table.concat(lines))
return {0, first, last, epoch}
`)

// readScript returns the epoch, the last seq, up to ARGV[3] entries from
// seq ARGV[2] on (with ARGV[4] == "tail", the newest ARGV[3] entries
// instead), and the oldest seq held. Returns {epoch, last seq, {{id,
// {field, line}}...}, oldest seq}.
var readScript = redis.NewScript(ensureLua + `
local epoch = ensure()
local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local count = tonumber(ARGV[3])
local entries = {}
if count > 0 then
  if ARGV[4] == 'tail' then
    local rev = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', count)
    for i = #rev, 1, -1 do entries[#entries + 1] = rev[i] end
  else
    entries = redis.call('XRANGE', KEYS[2], ARGV[2] .. '-0', '+', 'COUNT', count)
  end
end
local oldest = last + 1
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if first[1] then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
return {epoch, last, entries, oldest}
`)

// reepochScript gives a tenant a new numbering when its counter went
// backwards (Redis failed over to a replica that missed writes, or lost
// the stream but not the hash): a relay that saw seq ARGV[3] in epoch
// ARGV[2] finds a lower counter. It acts only if the epoch is still ARGV[2]
// and the counter still below, so racing relays bump it once.
// Returns the epoch now in force.
var reepochScript = redis.NewScript(ensureLua + `
local epoch = ensure()
if epoch ~= ARGV[2] then return epoch end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
if seq >= tonumber(ARGV[3]) then return epoch end
redis.call('DEL', KEYS[1])
return ensure()
`)

// Result is the outcome of an append.
type Result struct {
	First, Last uint64 // the seqs given to the batch
	Epoch       string
	Duplicate   bool // the Idempotency-Key was seen: nothing was published, this is the first answer
}

// Append publishes a batch atomically: each body is an encoded event
// without its opening '{"seq":N,' (which the script puts in front once the
// seqs are known) and with its closing newline (event.AppendBody). With a non-empty idemKey, a repeat within IdemTTL
// publishes nothing and returns the first Result (Duplicate set). Errors
// from an unreachable Redis wrap ErrUnavailable; an error means nothing
// was published, unless the reply alone was lost (retry with an
// Idempotency-Key to be safe).
func (s *Store) Append(ctx context.Context, tenant, idemKey string, bodies [][]byte) (Result, error) {
	if len(bodies) == 0 {
		return Result{}, fmt.Errorf("append: empty batch")
	}
	if !s.Ready() {
		// Fail fast while the health loop says Redis is away; it checks
		// again every healthPeriod.
		return Result{}, fmt.Errorf("%w: not reachable", ErrUnavailable)
	}
	keys := []string{s.metaKey(tenant), s.streamKey(tenant)}
	if idemKey != "" {
		keys = append(keys, s.idemKey(tenant, idemKey))
	}
	args := make([]any, 0, 5+len(bodies))
	args = append(args, newEpoch(), s.opts.MaxEvents, s.opts.MaxBytes, s.opts.IdemTTL.Milliseconds(), s.channel(tenant))
	for _, b := range bodies {
		args = append(args, b)
	}
	v, err := appendScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return Result{}, s.unavailable(fmt.Errorf("append to %s: %w", tenant, err))
	}
	if len(v) != 4 {
		return Result{}, fmt.Errorf("append to %s: unexpected reply %v", tenant, v)
	}
	r := Result{
		Duplicate: toInt(v[0]) == 1,
		First:     uint64(toInt(v[1])),
		Last:      uint64(toInt(v[2])),
	}
	r.Epoch, _ = v[3].(string)
	return r, nil
}

// Entry is one line of a tenant's log.
type Entry struct {
	Seq  uint64
	Line []byte // '{"seq":N,...}' and a newline
}

// Batch is what a read returns: the epoch and newest seq at the moment of
// the read, and the entries found.
type Batch struct {
	Epoch   string
	Last    uint64 // newest seq of the tenant (0: nothing published this epoch)
	Oldest  uint64 // oldest seq held (Last+1 when none)
	Entries []Entry
}

// Read returns up to max entries from seq from on (at most max, in seq
// order), with the tenant's epoch and newest seq, atomically. If the
// first entry's seq is above from, the lines between were evicted. With
// max 0 it only returns the epoch and newest seq. It creates the tenant's
// epoch if it has none yet, so that a subscriber learns the epoch before
// anything is published.
func (s *Store) Read(ctx context.Context, tenant string, from uint64, max int) (Batch, error) {
	return s.read(ctx, tenant, from, max, false)
}

// Tail returns the newest n entries (fewer if the history holds fewer),
// with the epoch and newest seq.
func (s *Store) Tail(ctx context.Context, tenant string, n int) (Batch, error) {
	return s.read(ctx, tenant, 0, n, true)
}

func (s *Store) read(ctx context.Context, tenant string, from uint64, max int, tail bool) (Batch, error) {
	if from < 1 {
		from = 1
	}
	mode := ""
	if tail {
		mode = "tail"
	}
	v, err := readScript.Run(ctx, s.rdb, s.readKeys(tenant), s.readArgs(tenant, from, max, mode)...).Slice()
	if err != nil {
		return Batch{}, s.unavailable(fmt.Errorf("read %s: %w", tenant, err))
	}
	return parseBatch(tenant, v)
}

func (s *Store) readKeys(tenant string) []string {
	return []string{s.metaKey(tenant), s.streamKey(tenant)}
}

func (s *Store) readArgs(tenant string, from uint64, max int, mode string) []any {
	return []any{newEpoch(), from, max, mode}
}

// parseBatch decodes readScript's reply.
func parseBatch(tenant string, v []any) (Batch, error) {
	if len(v) != 4 {
		return Batch{}, fmt.Errorf("read %s: unexpected reply %v", tenant, v)
	}
	var b Batch
	b.Epoch, _ = v[0].(string)
	b.Last = uint64(toInt(v[1]))
	b.Oldest = uint64(toInt(v[3]))
	raw, _ := v[2].([]any)
	b.Entries = make([]Entry, 0, len(raw))
	for _, r := range raw {
		e, ok := r.([]any)
		if !ok || len(e) != 2 {
			return Batch{}, fmt.Errorf("read %s: unexpected entry %v", tenant, r)
		}
		id, _ := e[0].(string)
		seq, err := parseID(id)
		if err != nil {
			return Batch{}, fmt.Errorf("read %s: entry id %q: %w", tenant, id, err)
		}
		fv, _ := e[1].([]any)
		if len(fv) != 2 {
			return Batch{}, fmt.Errorf("read %s: unexpected fields %v", tenant, e[1])
		}
		line, _ := fv[1].(string)
		b.Entries = append(b.Entries, Entry{Seq: seq, Line: []byte(line)})
	}
	return b, nil
}

// Reepoch asks for a new numbering because this relay saw seq saw in
// epoch, and Redis now holds less. It returns the epoch in force after.
func (s *Store) Reepoch(ctx context.Context, tenant, epoch string, saw uint64) (string, error) {
	e, err := reepochScript.Run(ctx, s.rdb, s.readKeys(tenant), newEpoch(), epoch, saw).Text()
	if err != nil {
		return "", s.unavailable(fmt.Errorf("reepoch %s: %w", tenant, err))
	}
	return e, nil
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}
