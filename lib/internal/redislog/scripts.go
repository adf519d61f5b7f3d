package redislog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/tl-sh/tl/lib/internal/tlog"
)

// stateLua is shared by the scripts: it finds the tenant's numbering and
// makes sure it is one that no event was ever given twice in.
//
// Redis can go back in time: a restart from an older RDB snapshot or
// append-only file, a failover to a replica that missed writes. The meta
// hash then comes back as it was, and the seqs given since would be given
// again to other events in the same epoch. Nothing inside Redis can tell
// such a state from the newest one, so the evidence comes from outside:
// every relay remembers, per tenant, the newest (epoch, seq) it saw and
// the Redis process (run_id) it saw it under (its mark, ARGV[2..4]), and
// every script checks the mark before anything else:
//   - the same epoch with a lower counter: writes the relay saw are gone;
//   - the same epoch and counter, but the hash's list of runs ("runs": the
//     Redis processes that served the tenant and the seq each found when
//     it first touched it) shows a process that started from below the
//     mark after the mark's process: gone too, and seqs given again since;
//   - another epoch that does not descend from the mark's ("olds": the
//     epochs this one replaced): the hash is older than what the relay saw.
//
// In each case the tenant starts a new epoch here, atomically, before any
// seq is given. A relay that knows nothing (mark seq 0) accepts what it
// finds. The runs list is stamped by the first script a new Redis process
// runs for the tenant, so the seq it records is the one the process
// loaded.
//
// A tenant's first epoch is derived, not drawn: a hash of the
// incarnation key (a random value written once by whichever relay needs
// it first, the one key a reader may write; gone with FLUSHALL), the
// Redis process and the tenant, so that every relay reading a tenant that
// was never written tells its subscribers the epoch the first append will
// create, and writes nothing (readers create no key). A restart or a
// FLUSHALL changes it, so a lost tenant is never reborn in an epoch it had.
//
// KEYS[1] meta, KEYS[2] stream, KEYS[3] incarnation; ARGV[1] a fresh
// random epoch (never one the relay saw events in), ARGV[2] mark epoch,
// ARGV[3] mark seq, ARGV[4] mark run ("": check the counter only;
// "client": a subscriber's claim, see Store.Verify).
// state(create) returns the epoch, the counter and the run; when the hash
// is missing and create is false: nil, the epoch an append would create,
// and the run.
const stateLua = `
redis.replicate_commands()
local function push(list, item)
  local t = {}
  for w in string.gmatch(list, '%S+') do t[#t + 1] = w end
  t[#t + 1] = item
  while #t > 8 do table.remove(t, 1) end
  return table.concat(t, ' ')
end
local function has(list, item)
  for w in string.gmatch(list, '%S+') do
    if w == item then return true end
  end
  return false
end
local function runid()
  return string.sub(string.match(redis.call('INFO', 'server'), 'run_id:(%x+)'), 1, 16)
end
local function fresh(epoch, run, olds)
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0, 'bytes', 0, 'runs', run .. ':0', 'olds', olds)
  return epoch, 0, run
end
local function birth(run, me)
  local inc = redis.call('GET', KEYS[3])
  if not inc then
    inc = ARGV[1]
    redis.call('SET', KEYS[3], inc)
  end
  local e = string.sub(redis.sha1hex(inc .. ' ' .. run .. ' ' .. KEYS[1]), 1, 16)
  if e == me then return ARGV[1] end
  return e
end
local function state(create)
  local run = runid()
  local me, ms, mr = ARGV[2], tonumber(ARGV[3]), ARGV[4]
  local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'runs', 'olds')
  local epoch, seq, runs, olds = m[1], tonumber(m[2]), m[3] or '', m[4] or ''
  if not epoch then
    if not create then return nil, birth(run, me), run end
    local o = ''
    if ms > 0 then o = me end
    return fresh(birth(run, me), run, o)
  end
  if string.match(runs, '(%x+):%d+$') ~= run then
    runs = push(runs, run .. ':' .. seq)
    redis.call('HSET', KEYS[1], 'runs', runs)
  end
  if ms == 0 then return epoch, seq, run end
  local lost = false
  if me == epoch then
    lost = seq < ms
    if mr == 'client' then
      -- A client's word: only a Redis process that started below the seq
      -- claimed can have lost it, so a made-up seq cannot make the tenant
      -- start over unless Redis restarted below it.
      local plausible, i = false, 0
      for _, base in string.gmatch(runs, '(%x+):(%d+)') do
        i = i + 1
        if i > 1 and tonumber(base) < ms then plausible = true end
      end
      lost = lost and plausible
    elseif not lost and mr ~= '' then
      local found = false
      for id, base in string.gmatch(runs, '(%x+):(%d+)') do
        if found and tonumber(base) < ms then lost = true end
        if id == mr then found = true end
      end
      if not found then lost = true end
    end
  elseif not has(olds, me) then
    lost = true
  end
  if not lost then return epoch, seq, run end
  olds = push(olds, epoch)
  if me ~= epoch then olds = push(olds, me) end
  return fresh(ARGV[1], run, olds)
end
`

// appendScript assigns seqs to a batch, appends it to the stream and
// publishes it to the tenant's channel for followers, all or nothing.
//
// KEYS[1..3] as for stateLua, KEYS[4] (optional) the idempotency key.
// ARGV[1..4] as for stateLua,
// ARGV[5] max events, ARGV[6] max bytes (0: none), ARGV[7] idempotency TTL
// in ms, ARGV[8] the channel, ARGV[9...] the bodies (each ending in a
// newline): each line is '{"seq":N,' followed by its body. The message is
// "EPOCH FIRST\n" followed by the lines (the format relays of earlier
// versions read: they may share the Redis during an upgrade).
// Returns {duplicate (0/1), first seq, last seq, epoch, run}.
var appendScript = redis.NewScript(stateLua + `
if KEYS[4] then
  local prev = redis.call('GET', KEYS[4])
  if prev then
    local f, l, e = string.match(prev, '^(%d+) (%d+) (.+)$')
    return {1, tonumber(f), tonumber(l), e, runid()}
  end
end
local epoch, _, run = state(true)
local n = #ARGV - 8
local last = redis.call('HINCRBY', KEYS[1], 'seq', n)
local first = last - n + 1
local size = 0
local lines = {}
for i = 1, n do
  local seq = first + i - 1
  local line = '{"seq":' .. seq .. ',' .. ARGV[8 + i]
  size = size + #line
  lines[i] = line
  redis.call('XADD', KEYS[2], seq .. '-0', 'd', line)
end
local total = redis.call('HINCRBY', KEYS[1], 'bytes', size)
local limit = tonumber(ARGV[5])
local maxBytes = tonumber(ARGV[6])
if maxBytes > 0 and total > 0 then
  local byBytes = math.floor(maxBytes / (total / last))
  if byBytes < limit then limit = byBytes end
end
if limit < 1 then limit = 1 end
redis.call('XTRIM', KEYS[2], 'MAXLEN', '~', limit)
if KEYS[4] then
  redis.call('SET', KEYS[4], first .. ' ' .. last .. ' ' .. epoch, 'PX', ARGV[7])
end
redis.call('PUBLISH', ARGV[8], epoch .. ' ' .. first .. '\n' .. table.concat(lines))
return {0, first, last, epoch, run}
`)

// readScript returns the epoch, the last seq, up to ARGV[6] entries from
// seq ARGV[5] on (with ARGV[7] == "tail", the newest ARGV[6] entries
// instead), the oldest seq held and the run. It creates nothing: for a
// tenant never written (no meta hash) it answers ARGV[1], the epoch the
// relay would create, with nothing in it, and absent = 1; subscribing to a
// name leaves no key behind. Returns {epoch, last seq, {{id, {field,
// line}}...}, oldest seq, run, absent}.
var readScript = redis.NewScript(stateLua + `
local epoch, last, run = state(false)
if not epoch then return {last, 0, {}, 1, run, 1} end
local count = tonumber(ARGV[6])
local entries = {}
if count > 0 then
  if ARGV[7] == 'tail' then
    local rev = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', count)
    for i = #rev, 1, -1 do entries[#entries + 1] = rev[i] end
  else
    entries = redis.call('XRANGE', KEYS[2], ARGV[5] .. '-0', '+', 'COUNT', count)
  end
end
local oldest = last + 1
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if first[1] then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
return {epoch, last, entries, oldest, run, 0}
`)

// Result is the outcome of an append.
type Result struct {
	First, Last uint64 // the seqs given to the batch
	Epoch       string
	Duplicate   bool // the Idempotency-Key was seen: nothing was published, this is the first answer
}

// Append publishes a batch atomically: each body is an encoded event
// without its opening '{"seq":N,' (which the script puts in front once the
// seqs are known) and with its closing newline (event.AppendBody). With a
// non-empty idemKey, a repeat within IdemTTL publishes nothing and returns
// the first Result (Duplicate set).
//
// An error wrapping ErrUnavailable means nothing was published (Redis
// was not reached, or refused the script). An error wrapping
// tlog.ErrOutcomeUnknown means the script was sent and no answer came
// (Redis hung, or the connection broke): the batch may be published, now
// or when Redis wakes up; only a retry with the same Idempotency-Key
// settles it.
func (s *Store) Append(ctx context.Context, tenant, idemKey string, bodies [][]byte) (Result, error) {
	if len(bodies) == 0 {
		return Result{}, fmt.Errorf("append: empty batch")
	}
	if !s.Ready() {
		// Fail fast while the health loop says Redis is away; it checks
		// again every healthPeriod.
		return Result{}, fmt.Errorf("%w: not reachable", ErrUnavailable)
	}
	keys := s.readKeys(tenant)
	if idemKey != "" {
		keys = append(keys, s.idemKey(tenant, idemKey))
	}
	args := make([]any, 0, 8+len(bodies))
	args = s.markArgs(args, tenant)
	args = append(args, s.opts.MaxEvents, s.opts.MaxBytes, s.opts.IdemTTL.Milliseconds(), s.channel(tenant))
	for _, b := range bodies {
		args = append(args, b)
	}
	v, err := appendScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		// The epoch to create may have been used by the lost answer's
		// script: never offer it again.
		s.spendCandidate(tenant)
		if !sent(err) {
			return Result{}, s.unavailable(fmt.Errorf("append to %s: %w", tenant, err))
		}
		s.unavailable(err)
		return Result{}, fmt.Errorf("append to %s: %w: %w", tenant, tlog.ErrOutcomeUnknown, err)
	}
	if len(v) != 5 {
		return Result{}, fmt.Errorf("append to %s: unexpected reply %v", tenant, v)
	}
	r := Result{
		Duplicate: toInt(v[0]) == 1,
		First:     uint64(toInt(v[1])),
		Last:      uint64(toInt(v[2])),
	}
	r.Epoch, _ = v[3].(string)
	run, _ := v[4].(string)
	// A duplicate's answer may name an epoch since replaced: it must not
	// replace what the relay knows.
	s.observe(tenant, r.Epoch, r.Last, run, !r.Duplicate)
	return r, nil
}

// sent reports whether a failed command may have reached Redis and run:
// anything but a failure to connect, an exhausted pool, or an error reply
// (Redis answered, so the script failed before its first write: a Lua
// script is refused whole for OOM, READONLY, LOADING...).
func sent(err error) bool {
	var re redis.Error
	if errors.As(err, &re) {
		return false
	}
	if errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return false
	}
	return true
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
	Run     string // the Redis process that answered (its run_id's first 16 digits)
	Absent  bool   // the tenant was never written: Epoch is the one an append would create
}

// Read returns up to max entries from seq from on (at most max, in seq
// order), with the tenant's epoch and newest seq, atomically. If the
// first entry's seq is above from, the lines between were evicted. With
// max 0 it only returns the epoch and newest seq. For a tenant never
// written it creates nothing and returns the epoch this relay's first
// append will create, so that a subscriber learns an epoch before anything
// is published.
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
	return s.parseBatch(tenant, v)
}

// Verify tells the store that a client saw seq in epoch (a subscriber
// resuming from there): if Redis holds less of that epoch, the numbering
// went back and the tenant starts a new epoch before any seq is given
// again. It returns the tenant's state after.
//
// A client's word is weighed: it counts only if a Redis process that
// started below seq has served the tenant since its epoch began (so a
// subscriber cannot wipe a history by claiming a seq never given, unless
// Redis restarted below it, and then once).
func (s *Store) Verify(ctx context.Context, tenant, epoch string, seq uint64) (Batch, error) {
	s.observe(tenant, epoch, seq, clientRun, false)
	return s.read(ctx, tenant, 1, 0, false)
}

func (s *Store) readKeys(tenant string) []string {
	return []string{s.metaKey(tenant), s.streamKey(tenant), s.prefix + "incarnation"}
}

func (s *Store) readArgs(tenant string, from uint64, max int, mode string) []any {
	args := s.markArgs(make([]any, 0, 7), tenant)
	return append(args, from, max, mode)
}

// parseBatch decodes readScript's reply, and notes what it shows.
func (s *Store) parseBatch(tenant string, v []any) (Batch, error) {
	if len(v) != 6 {
		return Batch{}, fmt.Errorf("read %s: unexpected reply %v", tenant, v)
	}
	var b Batch
	b.Epoch, _ = v[0].(string)
	b.Last = uint64(toInt(v[1]))
	b.Oldest = uint64(toInt(v[3]))
	b.Run, _ = v[4].(string)
	b.Absent = toInt(v[5]) == 1
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
	if !b.Absent {
		s.observe(tenant, b.Epoch, b.Last, b.Run, true)
	}
	return b, nil
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
