package disklog

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// maxSyncs bounds the fsyncs of one tenant's log in flight at once. The
// kernel folds concurrent fsyncs of a file into shared journal commits:
// measured on ext4, four writers each fsyncing their own appends finish
// about ten times sooner than the same appends fsync'd one after another.
// So a batch arriving while an fsync runs is written and fsync'd at once
// instead of waiting for it; acknowledgements stay in seq order.
const maxSyncs = 4

// errEarlier fails the groups written after one that failed.
var errEarlier = errors.New("an earlier write failed")

// group is the requests one commit writes together and covers with one
// fsync.
type group struct {
	reqs  []*request
	seg   *segment
	off   int64 // where in seg they were written (seg is nil when the write failed)
	size  int64
	count int
	idx   []indexEntry
	first uint64
	last  uint64
	err   error
	prev  *group        // acknowledged before this one
	acked chan struct{} // closed once this group is answered
	// synced is closed once this group and every one before it are
	// fsync'd (or failed): then l.synced covers them.
	synced    chan struct{}
	syncFails bool // set before synced is closed: this group or one before failed
}

// commitLoop is the tenant's committer: it takes every pending request at
// once, writes them, and starts their fsync (at most maxSyncs at a time);
// requests arriving meanwhile form the next group. It ends when nothing is
// pending (the next Append starts it again), so idle tenants cost no
// goroutine.
func (l *Log) commitLoop() {
	defer l.wg.Done()
	for {
		// Wait for an fsync slot before taking requests: while the slots
		// are busy, new requests pile up into one group.
		l.syncs <- struct{}{}
		l.mu.Lock()
		if len(l.pending) == 0 {
			l.committing = false
			l.mu.Unlock()
			<-l.syncs
			return
		}
		reqs := l.pending
		l.pending = nil
		err := l.err
		l.mu.Unlock()

		for _, r := range reqs {
			<-r.ready
			if r.encodeErr != nil && err == nil {
				// Its seqs were reserved and will never be written: the
				// numbering can no longer be kept, so stop taking events.
				err = r.encodeErr
			}
		}
		g := &group{reqs: reqs, prev: l.tail, acked: make(chan struct{}), synced: make(chan struct{}),
			first: reqs[0].first, last: reqs[len(reqs)-1].first + uint64(reqs[len(reqs)-1].n) - 1}
		l.tail = g
		if err == nil {
			err = l.write(g)
		}
		if err != nil {
			l.fail(err)
			g.err = err
		}
		l.wg.Add(1)
		go l.syncAndAck(g) // it frees the slot
	}
}

// fail stops the log after a failed write or fsync.
func (l *Log) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.store.log.Error("data directory: write failed; the tenant takes no more events until restart", "tenant", l.tenant, "err", err)
		l.err = fmt.Errorf("data directory: %w", err)
	}
}

// write writes a group's records to the open segment, rolling to a new
// segment first when it is full, and computes their index entries.
func (l *Log) write(g *group) error {
	if !l.onDisk {
		if err := l.create(); err != nil {
			return err
		}
	}
	l.mu.Lock()
	var seg *segment
	if n := len(l.segs); n > 0 {
		seg = l.segs[n-1]
	}
	l.mu.Unlock()
	full := seg == nil || l.segmentFull(seg)
	if seg != nil && seg.wcount == 0 && seg.base == g.first {
		full = false // an empty open segment (just rolled, or a reserve marker)
	}
	if full {
		if err := l.roll(seg, g.first); err != nil {
			return err
		}
		l.mu.Lock()
		seg = l.segs[len(l.segs)-1]
		l.mu.Unlock()
	}
	off := seg.written
	at := off
	for _, r := range g.reqs {
		for p := 0; p < len(r.buf); {
			h := readHeader(r.buf[p:])
			if !h.key {
				if at+int64(p)-seg.wLastIdx >= indexInterval {
					g.idx = append(g.idx, indexEntry{h.seq, at + int64(p)})
					seg.wLastIdx = at + int64(p)
				}
				g.count++
			}
			p += headerSize + h.n
		}
		if _, err := seg.f.WriteAt(r.buf, at); err != nil {
			// Undo a partial write so that a later restart does not see it.
			seg.f.Truncate(off)
			return err
		}
		at += int64(len(r.buf))
	}
	g.seg, g.off, g.size = seg, off, at-off
	seg.written, seg.wcount = at, seg.wcount+g.count
	l.mu.Lock()
	seg.refs++ // held by the fsync
	l.mu.Unlock()
	if l.segmentFull(seg) {
		// Roll over now rather than at the next write: a full segment
		// then stops being the open one, so retention and the total cap
		// can remove it even if its tenant goes quiet. (On failure the
		// next write tries again.)
		if err := l.roll(seg, g.last+1); err != nil {
			l.store.log.Warn("data directory: rolling over a segment", "tenant", l.tenant, "err", err)
		}
	}
	return nil
}

// segmentFull reports whether the committer should start a new segment
// after seg. Committer only.
func (l *Log) segmentFull(seg *segment) bool {
	o := l.store.opts
	return seg.written >= l.store.segBytes ||
		(o.MaxEvents > 0 && seg.wcount >= max(o.MaxEvents/segmentEventsPerBound, minSegmentEvents))
}

// roll starts a new open segment at seq base after old (nil for none); old
// is sealed once all of it is acknowledged. Committer only.
func (l *Log) roll(old *segment, base uint64) error {
	if err := l.newSegment(base); err != nil {
		return err
	}
	if old != nil {
		l.mu.Lock()
		old.finalSize = old.written
		old.sealed = old.size == old.finalSize
		l.mu.Unlock()
	}
	return nil
}

// syncAndAck fsyncs a written group, waits for the group before it, then
// makes it visible (durable seq, index, OnCommit) and answers its requests.
func (l *Log) syncAndAck(g *group) {
	defer l.wg.Done()
	if g.err == nil {
		sync := (*os.File).Sync
		if h := l.store.syncFile; h != nil {
			sync = h
		}
		if err := sync(g.seg.f); err != nil {
			l.fail(err)
			g.err = err
		}
	}
	<-l.syncs
	if g.prev != nil {
		<-g.prev.synced
		if g.prev.syncFails && g.err == nil {
			g.err = errEarlier
		}
	}
	g.syncFails = g.err != nil
	if g.err == nil {
		l.mu.Lock()
		l.synced = g.last
		l.mu.Unlock()
	}
	close(g.synced)
	if g.err == nil {
		// Raise the acknowledged mark over the group before anyone hears
		// of it (see acked.go).
		if err := l.raiseAcked(g.last); err != nil {
			l.fail(err)
			g.err = err
		}
	}
	if g.prev != nil {
		<-g.prev.acked
		if g.prev.err != nil && g.err == nil {
			g.err = errEarlier
		}
		g.prev = nil // let the chain go
	}
	var removed []*segment
	l.mu.Lock()
	if g.seg != nil {
		seg := g.seg
		if g.err == nil {
			if seg.count == 0 {
				seg.first = g.first
			}
			seg.count += g.count
			seg.last = g.last
			seg.size += g.size
			seg.sealed = seg.size == seg.finalSize
			seg.index = append(seg.index, g.idx...)
			seg.modTime = time.Now()
			l.durable = g.last
			if !seg.removed {
				// (A segment the total cap removed while this group
				// was in its fsync no longer counts.)
				l.bytes += g.size
				l.store.total.Add(g.size)
			}
			removed = l.retainLocked()
		}
		seg.refs--
		if seg.removed && seg.refs == 0 && seg.f != nil {
			seg.f.Close()
			seg.f = nil
		}
	}
	l.mu.Unlock()
	if g.err == nil && l.store.opts.OnCommit != nil {
		var bodies [][]byte
		for _, r := range g.reqs {
			bodies = recordBodies(bodies[:0], r.buf)
			l.store.opts.OnCommit(l.tenant, r.first, bodies)
		}
	}
	for _, r := range g.reqs {
		r.err = g.err
		close(r.done)
	}
	close(g.acked)
	g.reqs, g.idx = nil, nil // l.tail may hold g until the next group
	l.removeFiles(removed, "retention")
	l.store.enforceCap(l)
}
