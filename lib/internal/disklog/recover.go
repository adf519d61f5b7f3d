package disklog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

type metaFile struct {
	Epoch string `json:"epoch"`
}

// recover loads a tenant's log from its directory, cutting away damage.
func (s *Store) recover(tenant string) (*Log, error) {
	l := newLog(s, tenant)
	l.onDisk = true
	b, err := os.ReadFile(filepath.Join(l.dir, "meta.json"))
	var m metaFile
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	bases, lerr := listSegments(l.dir)
	if lerr != nil {
		return nil, lerr
	}
	newEpoch := err != nil || m.Epoch == ""
	if newEpoch && len(bases) > 0 {
		// Without the epoch, a client cannot tell this history from the
		// one it knew: start a new epoch (the seqs still continue).
		s.log.Warn("tenant meta file missing or damaged: new epoch", "tenant", tenant, "err", err)
	}
	var buf []byte
	var reserve, lastSeq uint64
	damagedTail := false // the newest segment ends in damaged records written in full
	for i, base := range bases {
		seg := &segment{base: base, path: filepath.Join(l.dir, segName(base))}
		buf, err = readAll(seg.path, buf)
		if err != nil {
			return nil, err
		}
		sc := scanSegment(buf, base, i == len(bases)-1)
		for _, d := range sc.damage {
			s.log.Warn("data directory: damaged segment repaired", "tenant", tenant, "segment", seg.path, "damage", d)
		}
		// No file stays open: recovery holds one at a time, however many
		// tenants the directory has (the file cache opens them on use).
		if sc.end < int64(len(buf)) {
			// The cut must be durable before anything is appended after
			// it: a failure here (a failing disk) stops the start-up,
			// naming the file, rather than serve a directory that a
			// later recovery would read differently.
			if err := truncateFile(seg.path, sc.end, s.opts.faults); err != nil {
				return nil, fmt.Errorf("cutting damaged tail of %s: %w", seg.path, err)
			}
		}
		st, _ := os.Stat(seg.path)
		seg.count, seg.first, seg.last, seg.index, seg.size = sc.count, sc.first, sc.last, sc.index, sc.end
		seg.written, seg.wcount, seg.wLastIdx = sc.end, sc.count, -indexInterval
		seg.finalSize = -1 // open until sealed below
		if n := len(sc.index); n > 0 {
			seg.wLastIdx = sc.index[n-1].off
		}
		if st != nil {
			seg.modTime = st.ModTime()
		}
		reserve = max(reserve, sc.reserve)
		damagedTail = i == len(bases)-1 && sc.reserve > 0
		l.keys = append(l.keys, sc.keys...)
		if len(l.keys) > 2*maxKeys {
			l.keys = append(l.keys[:0:0], l.keys[len(l.keys)-maxKeys:]...)
		}
		if sc.count > 0 {
			lastSeq = sc.last
		}
		l.segs = append(l.segs, seg)
		l.bytes += seg.size
	}
	l.next = max(lastSeq+1, reserve+1, 1)
	if n := len(l.segs); n > 0 {
		l.next = max(l.next, l.segs[n-1].base)
	}
	// The acknowledged mark (see acked.go): a log that ends below it lost
	// acknowledged events to something other than a crash.
	mark, aerr := readAcked(l.dir)
	if damagedTail && aerr == nil && mark > l.next-1 {
		// The newest segment ends in damaged records written in full
		// (their bytes are there, the checksums fail): they held the
		// seqs up to the mark, reserved like the first of them, and a
		// reader is told of them by a gap, as it was before the
		// restart; nothing else is missing.
		s.log.Warn("data directory: damaged records at the end of the log", "tenant", tenant,
			"seqs", fmt.Sprintf("%d-%d", l.next, mark))
		l.next = mark + 1
	}
	switch {
	case aerr == nil && mark > l.next-1:
		// Events acknowledged, maybe delivered, are gone: never give
		// their seqs again, and start a new epoch, so that a client
		// resuming with the old one is told the numbering restarted
		// instead of missing them silently.
		s.log.Warn("data directory: acknowledged events missing (a segment cut short, removed or replaced by an older copy): new epoch",
			"tenant", tenant, "seqs", fmt.Sprintf("%d-%d", l.next, mark))
		l.next, newEpoch = mark+1, true
	case aerr != nil && !errors.Is(aerr, os.ErrNotExist):
		// Without the mark, a loss cannot be told from a crash.
		s.log.Warn("data directory: acknowledged mark unreadable: new epoch", "tenant", tenant, "err", aerr)
		newEpoch = true
	}
	// (No acked file: a directory written before the mark existed; its
	// segments are taken as they are.)
	if newEpoch {
		m.Epoch = s.opts.NewEpoch()
		if err := writeFileAtomic(filepath.Join(l.dir, "meta.json"), metaJSON(m.Epoch)); err != nil {
			return nil, err
		}
	}
	l.epoch = m.Epoch
	if n := len(l.segs); (n == 0 || l.next > l.segs[n-1].base) && l.next > lastSeq+1 {
		// Seqs were reserved past the last record: an empty segment
		// named after the next seq keeps them reserved across restarts.
		if err := l.newSegment(l.next); err != nil {
			return nil, err
		}
	}
	if len(l.keys) > maxKeys {
		l.keys = append(l.keys[:0:0], l.keys[len(l.keys)-maxKeys:]...)
	}
	for _, seg := range l.segs[:max(len(l.segs)-1, 0)] {
		seg.finalSize, seg.sealed = seg.size, true // only the newest takes more records
	}
	l.durable = l.next - 1
	// Everything kept is served from now on: the mark covers it.
	if aerr != nil || mark != l.durable {
		if err := writeAcked(l.dir, l.durable); err != nil {
			return nil, err
		}
	}
	l.synced, l.ackedMark = l.durable, l.durable
	if s.opts.MaxEvents > 0 && l.durable >= uint64(s.opts.MaxEvents) {
		l.floor = l.durable - uint64(s.opts.MaxEvents) + 1
	}
	s.total.Add(l.bytes)
	return l, nil
}

// truncateFile cuts the file at path to size, durably, through fs.
func truncateFile(path string, size int64, fs *faults) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = fs.truncate(f, size)
	if err == nil {
		err = fs.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// faults stands in for file operations, so that tests can make them fail;
// the zero value (and nil) performs them. (Opening files is the file
// cache's openFile.)
type faults struct {
	truncateFile func(f *os.File, size int64) error // recovery's cut of a damaged tail
	syncFile     func(f *os.File) error             // a segment's fsync: a batch's, or the cut's
	ackSync      func(f *os.File) error             // the acked file's fdatasync
}

func (fs *faults) truncate(f *os.File, size int64) error {
	if fs != nil && fs.truncateFile != nil {
		return fs.truncateFile(f, size)
	}
	return f.Truncate(size)
}

func (fs *faults) sync(f *os.File) error {
	if fs != nil && fs.syncFile != nil {
		return fs.syncFile(f)
	}
	return f.Sync()
}

func metaJSON(epoch string) []byte {
	b, _ := json.Marshal(metaFile{Epoch: epoch})
	return append(b, '\n')
}
