package disklog

import (
	"container/list"
	"errors"
	"os"
	"sync"
	"syscall"
)

// Open segment files (and acked files, held the same way: see Log.ackFile)
// are a bounded cache shared by every tenant of a Store, so that
// descriptors are spent on what is being written or read now, not on every
// tenant ever written: a relay holding 100,000 tenants on disk needs no more
// descriptors than one holding ten. A file is pinned while a
// read, a write or an fsync uses it; unpinned ones stay open, least recently
// used last, until the cache is over its bound or their tenant goes idle.

// Sizing the cache from RLIMIT_NOFILE: a quarter of the soft limit leaves the
// rest to sockets (every subscriber and publisher holds one) and to the
// short-lived descriptors of directory fsyncs; the cap keeps a generous limit
// from holding thousands of idle files; the floor keeps a tiny limit usable.
const (
	openFilesShare = 4
	maxOpenFiles   = 4096
	minOpenFiles   = 8
)

// errSegmentGone is what get answers for a segment dropped from its log (by
// retention or the total cap): its file may be unlinked already.
var errSegmentGone = errors.New("segment removed")

// fileCache holds the open segment and acked files of a Store.
type fileCache struct {
	max int // open files kept beyond those pinned
	// openFile opens files (os.OpenFile; tests inject faults).
	openFile func(name string, flag int, perm os.FileMode) (*os.File, error)

	mu    sync.Mutex // guards everything below and each segment's gone
	lru   list.List  // of *openFile, most recently used first
	files map[*segment]*openFile
	open  int  // descriptors held (or being opened) by entries, doomed ones included
	shut  bool // the store is closed: nothing is opened any more
}

// openFile is one segment's open file in the cache.
type openFile struct {
	seg   *segment
	f     *os.File      // set before ready closes (nil if err)
	err   error         // the open failed
	ready chan struct{} // closed once the open is done
	pins  int           // gets not yet put back
	elem  *list.Element // in lru (nil once out of the cache)
	// doomed: out of the cache (its segment removed, its tenant idle or
	// the store closed); the last put closes it.
	doomed bool
}

func newFileCache(max int) *fileCache {
	if max <= 0 {
		max = defaultOpenFiles()
	}
	return &fileCache{max: max, openFile: os.OpenFile, files: map[*segment]*openFile{}}
}

// get returns seg's file, opened if needed, pinned until put. The open is
// done outside the lock; others asking for the same segment meanwhile wait
// for it. A shortage of descriptors (EMFILE, ENFILE) first closes every
// unpinned file of the cache and tries once more, so a passing shortage
// costs the cache, not the write.
func (c *fileCache) get(seg *segment) (*openFile, error) {
	c.mu.Lock()
	if c.shut {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if seg.gone {
		c.mu.Unlock()
		return nil, errSegmentGone
	}
	if e := c.files[seg]; e != nil {
		e.pins++
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		<-e.ready
		if e.err != nil {
			c.put(e)
			return nil, e.err
		}
		return e, nil
	}
	e := &openFile{seg: seg, pins: 1, ready: make(chan struct{})}
	e.elem = c.lru.PushFront(e)
	c.files[seg] = e
	c.open++
	victims := c.evictLocked(c.max)
	c.mu.Unlock()
	closeFiles(victims)

	f, err := c.openFile(seg.path, os.O_RDWR, 0)
	if isShortage(err) && c.shrink() {
		f, err = c.openFile(seg.path, os.O_RDWR, 0)
	}
	c.mu.Lock()
	e.f, e.err = f, err
	if err != nil {
		c.removeLocked(e)
		c.open--
	}
	close(e.ready)
	c.mu.Unlock()
	if err != nil {
		c.put(e)
		return nil, err
	}
	return e, nil
}

// shrink closes every unpinned file, for a shortage of descriptors, and
// reports whether it closed any.
func (c *fileCache) shrink() bool {
	c.mu.Lock()
	victims := c.evictLocked(0)
	c.mu.Unlock()
	closeFiles(victims)
	return len(victims) > 0
}

// add puts a file just created for seg in the cache, unpinned.
func (c *fileCache) add(seg *segment, f *os.File) {
	e := &openFile{seg: seg, f: f, ready: make(chan struct{})}
	close(e.ready)
	c.mu.Lock()
	if c.shut {
		c.mu.Unlock()
		f.Close()
		return
	}
	if old := c.files[seg]; old != nil {
		c.removeLocked(old) // (cannot happen: a new segment is nobody's yet)
		old.doomed = true
	}
	e.elem = c.lru.PushFront(e)
	c.files[seg] = e
	c.open++
	victims := c.evictLocked(c.max)
	c.mu.Unlock()
	closeFiles(victims)
}

// put unpins e; a doomed file is closed by its last put.
func (c *fileCache) put(e *openFile) {
	c.mu.Lock()
	e.pins--
	var f *os.File
	if e.pins == 0 && e.doomed && e.f != nil {
		f, e.f = e.f, nil
		c.open--
	}
	c.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// drop closes the segments' files (now, or at their last put). With gone,
// the segments were removed from their log and are never opened again;
// otherwise (an idle tenant) a later get opens them afresh.
func (c *fileCache) drop(segs []*segment, gone bool) {
	var victims []*os.File
	c.mu.Lock()
	for _, seg := range segs {
		if gone {
			seg.gone = true
		}
		e := c.files[seg]
		if e == nil {
			continue
		}
		victims = c.doomLocked(e, victims)
	}
	c.mu.Unlock()
	closeFiles(victims)
}

// close closes every file (those in use once they are put back), and
// opens none from now on.
func (c *fileCache) close() {
	c.mu.Lock()
	c.shut = true
	var victims []*os.File
	for _, e := range c.files {
		victims = c.doomLocked(e, victims)
	}
	c.mu.Unlock()
	closeFiles(victims)
}

// count returns the descriptors the cache holds.
func (c *fileCache) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// evictLocked takes out of the cache the least recently used unpinned
// files until it holds at most keep open, and returns them to be closed
// outside the lock. Pinned files are never evicted: the cache may exceed
// its bound by the files in use at this moment.
func (c *fileCache) evictLocked(keep int) []*os.File {
	var victims []*os.File
	for el := c.lru.Back(); el != nil && c.open > keep; {
		e := el.Value.(*openFile)
		el = el.Prev()
		if e.pins > 0 || e.f == nil {
			continue
		}
		c.removeLocked(e)
		victims = append(victims, e.f)
		e.f = nil
		c.open--
	}
	return victims
}

// removeLocked takes e out of the map and the LRU list (its descriptor, if
// any, is still counted in open).
// doomLocked takes e out of the cache for good: its file joins victims,
// to be closed once c.mu is released, or, while pinned, is closed by the
// last put.
func (c *fileCache) doomLocked(e *openFile, victims []*os.File) []*os.File {
	c.removeLocked(e)
	e.doomed = true
	if e.pins == 0 && e.f != nil {
		victims = append(victims, e.f)
		e.f = nil
		c.open--
	}
	return victims
}

func (c *fileCache) removeLocked(e *openFile) {
	if c.files[e.seg] == e {
		delete(c.files, e.seg)
	}
	if e.elem != nil {
		c.lru.Remove(e.elem)
		e.elem = nil
	}
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// isShortage reports whether err is a lack of descriptors, the process's or
// the system's: a passing condition, worth a retry.
func isShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
