package redislog

import (
	"maps"

	"github.com/tl-sh/tl/lib/event"
)

// maxMarks bounds the tenants a Store remembers (about 100 bytes each):
// past it, an arbitrary one is forgotten, and with it this relay's
// evidence against a rollback of that tenant (other relays may still hold
// theirs).
const maxMarks = 100_000

// clientRun is the run of a mark that a client's word set (Store.Verify):
// stateLua weighs it instead of trusting it.
const clientRun = "client"

// mark is what this relay knows of one tenant's numbering: the newest seq
// it saw in epoch, and the Redis process (run) it saw it under. The
// scripts check it before giving any seq (stateLua), so that Redis going
// back in time starts a new epoch instead of naming two events alike.
type mark struct {
	epoch string
	seq   uint64
	run   string // "": check the counter only; clientRun: a client's claim
	// cand is the epoch an append creates if the tenant has no meta hash
	// (also what a read of a never-written tenant answers, so that a
	// subscriber's hello and the first append agree). Never an epoch
	// events were given in: it is replaced once seen in use.
	cand string
}

// markArgs appends the scripts' ARGV[1..4] for tenant.
func (s *Store) markArgs(args []any, tenant string) []any {
	s.marksMu.Lock()
	m := s.markLocked(tenant)
	args = append(args, m.cand, m.epoch, m.seq, m.run)
	s.marksMu.Unlock()
	return args
}

// markLocked returns tenant's mark, creating it. s.marksMu is held.
func (s *Store) markLocked(tenant string) *mark {
	m := s.marks[tenant]
	if m == nil {
		if len(s.marks) >= maxMarks {
			for t := range maps.Keys(s.marks) {
				delete(s.marks, t)
				break
			}
		}
		m = &mark{cand: event.NewEpoch()}
		s.marks[tenant] = m
	}
	return m
}

// observe notes that Redis showed tenant at seq in epoch under run. With
// replace, a different epoch replaces the mark (a script answered with
// the numbering in force, having checked the mark); without, only a
// higher seq of the same epoch counts, or any when nothing is known yet.
func (s *Store) observe(tenant, epoch string, seq uint64, run string, replace bool) {
	s.marksMu.Lock()
	defer s.marksMu.Unlock()
	m := s.markLocked(tenant)
	if epoch == m.cand {
		m.cand = event.NewEpoch() // in use now: never create it again
	}
	switch {
	case epoch == m.epoch:
		if seq > m.seq || (seq == m.seq && run != "" && run != clientRun) {
			m.seq, m.run = seq, run
		}
	case replace || m.epoch == "":
		m.epoch, m.seq, m.run = epoch, seq, run
	}
}

// spendCandidate replaces tenant's candidate epoch: an append whose answer
// was lost may have created it.
func (s *Store) spendCandidate(tenant string) {
	s.marksMu.Lock()
	defer s.marksMu.Unlock()
	s.markLocked(tenant).cand = event.NewEpoch()
}

// forget drops tenant's mark if it holds no evidence (the tenant was never
// seen written), so that reading names leaves nothing behind here either.
func (s *Store) forget(tenant string) {
	s.marksMu.Lock()
	defer s.marksMu.Unlock()
	if m := s.marks[tenant]; m != nil && m.seq == 0 {
		delete(s.marks, tenant)
	}
}
