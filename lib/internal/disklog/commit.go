package disklog

import (
	"errors"
	"fmt"
	"path/filepath"
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
	file  *openFile // seg's file, pinned from the write to the end of its fsync
	ack   *openFile // the acked file, pinned likewise until the mark is raised
	off   int64     // where in seg they were written (seg is nil when the write failed)
	size  int64
	count int
	idx   []indexEntry
	first uint64
	last  uint64
	err   error
	// retry: the group failed before anything of it was written, and its
	// seqs were given back (see giveBack): it stops nothing after it.
	retry bool
	stop  error         // the failure that fails every later group (set when acked)
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
		retry := false
		if err == nil {
			retry, err = l.write(g)
		}
		switch {
		case err != nil && retry:
			l.giveBack(g, err)
			g.err, g.retry = err, true
		case err != nil:
			l.fail(err)
			g.err = err
		}
		l.wg.Add(1)
		go l.syncAndAck(g) // it frees the slot
	}
}

// fail stops the log after a failed write or fsync: what reached the disk
// is no longer known, so the tenant takes no more events until a restart
// (whose recovery finds out). Store.Failed names it from now on.
func (l *Log) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.store.log.Error("data directory: write failed; the tenant takes no more events until restart", "tenant", l.tenant, "err", err)
		l.err = fmt.Errorf("data directory: %w", err)
		l.store.failMu.Lock()
		l.store.failed[l.tenant] = err.Error()
		l.store.failMu.Unlock()
	}
}

// giveBack undoes a group that failed before anything of it was written
// (creating the tenant's directory, rolling to a new segment, opening a
// file: often a passing shortage of descriptors or space): its seqs are
// given out again, so the requests reserved after it, whose bodies hold
// seqs after its own, fail with it too. Nothing is kept: the next append
// tries again. Committer only.
func (l *Log) giveBack(g *group, err error) {
	l.mu.Lock()
	later := l.pending
	l.pending = nil
	l.next = g.first
	l.mu.Unlock()
	l.store.log.Warn("data directory: could not start a write; the next append tries again", "tenant", l.tenant, "err", err)
	for _, r := range later {
		r.err = err
		close(r.done)
	}
}

// write writes a group's records to the open segment, rolling to a new
// segment first when it is full, and computes their index entries. retry
// reports an error before anything was written.
func (l *Log) write(g *group) (retry bool, err error) {
	if !l.onDisk {
		if err := l.create(); err != nil {
			return true, err
		}
	}
	l.mu.Lock()
	var seg *segment
	if n := len(l.segs); n > 0 {
		seg = l.segs[n-1]
	}
	if l.ackFile == nil {
		l.ackFile = &segment{path: filepath.Join(l.dir, ackedName)}
	}
	ackSeg := l.ackFile
	l.mu.Unlock()
	full := seg == nil || l.segmentFull(seg)
	if seg != nil && seg.wcount == 0 && seg.base == g.first {
		full = false // an empty open segment (just rolled, or a reserve marker)
	}
	if full {
		if err := l.roll(seg, g.first); err != nil {
			return true, err
		}
		l.mu.Lock()
		seg = l.segs[len(l.segs)-1]
		l.mu.Unlock()
	}
	// Both files are pinned before anything is written, so that failing
	// to open either (a passing shortage of descriptors, say) stops
	// nothing, and raising the mark after the fsync opens nothing.
	file, err := l.store.files.get(seg)
	if err != nil {
		return true, err
	}
	ack, err := l.store.files.get(ackSeg)
	if err != nil {
		l.store.files.put(file)
		return true, err
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
		if _, err := file.f.WriteAt(r.buf, at); err != nil {
			// Undo a partial write so that a later restart does not see it.
			file.f.Truncate(off)
			l.store.files.put(file)
			l.store.files.put(ack)
			return false, err
		}
		at += int64(len(r.buf))
	}
	g.seg, g.file, g.ack, g.off, g.size = seg, file, ack, off, at-off // syncAndAck puts them back
	seg.written, seg.wcount = at, seg.wcount+g.count
	if l.segmentFull(seg) {
		// Roll over now rather than at the next write: a full segment
		// then stops being the open one, so retention and the total cap
		// can remove it even if its tenant goes quiet. (On failure the
		// next write tries again.)
		if err := l.roll(seg, g.last+1); err != nil {
			l.store.log.Warn("data directory: rolling over a segment", "tenant", l.tenant, "err", err)
		}
	}
	return false, nil
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
		if err := l.store.opts.faults.sync(g.file.f); err != nil {
			l.fail(err)
			g.err = err
		}
	}
	<-l.syncs
	syncFailed := false
	if g.prev != nil {
		<-g.prev.synced
		syncFailed = g.prev.syncFails
	}
	if syncFailed && g.err == nil {
		g.err = errEarlier
	}
	// A group that wrote nothing (retry) fails none after it.
	g.syncFails = syncFailed || (g.err != nil && !g.retry)
	if g.err == nil {
		l.mu.Lock()
		l.synced = g.last
		l.mu.Unlock()
	}
	close(g.synced)
	if g.err == nil {
		// Raise the acknowledged mark over the group before anyone hears
		// of it (see acked.go).
		if err := l.raiseAcked(g.ack.f, g.last); err != nil {
			l.fail(err)
			g.err = err
		}
	}
	var earlier error
	if g.prev != nil {
		<-g.prev.acked
		earlier = g.prev.stop
		g.prev = nil // let the chain go
	}
	if earlier != nil && g.err == nil {
		g.err = errEarlier
	}
	g.stop = g.err
	if g.retry {
		g.stop = earlier // it wrote nothing: the groups after it stand
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
	}
	l.mu.Unlock()
	if g.file != nil {
		l.store.files.put(g.file)
		l.store.files.put(g.ack)
		g.file, g.ack = nil, nil
	}
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
