package disklog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// The acknowledged mark: DIR/tenants/TENANT/acked holds the newest seq that
// may have been acknowledged or delivered. Segments alone cannot tell a
// crash from other losses: a segment cut short by a crash ends in a batch
// that was never acknowledged (its seqs may be given again), but one cut
// short by a truncation, a copy or a restore of an older file ends wherever
// it was cut, acknowledged events included. So before a batch is answered
// (and before any reader sees it), the mark is raised over it and fsync'd,
// after the batch's own fsync: on disk, the mark never passes data that was
// not durable first. At start-up, a log that ends below its mark has lost
// acknowledged events to something other than a crash; it starts a new
// epoch (a resuming client is told the numbering restarted) and never gives
// those seqs again (see recover).
//
// The file holds two slots of ackSlot bytes, written in turn in place:
//
//	offset 0  seq  uint64  little endian
//	offset 8  crc  uint32  Castagnoli CRC of the seq's 8 bytes
//	offset 12 zero
//
// A write torn by a crash spoils at most the slot being written, whose seq
// was not yet acknowledged (the answer waits for the fsync): the other slot
// holds the mark before it. The mark is the greater valid slot.
const (
	ackedName = "acked"
	ackSlot   = 16
)

// errAckedDamaged: neither slot of the acked file verifies.
var errAckedDamaged = errors.New("acked file damaged")

func encodeAckSlot(dst []byte, seq uint64) {
	binary.LittleEndian.PutUint64(dst, seq)
	binary.LittleEndian.PutUint32(dst[8:], crc32.Checksum(dst[:8], castagnoli))
	clear(dst[12:ackSlot])
}

// readAcked returns the mark kept in dir: an error wrapping os.ErrNotExist
// when there is no file, errAckedDamaged when no slot verifies.
func readAcked(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, ackedName))
	if err != nil {
		return 0, err
	}
	var mark uint64
	ok := false
	for off := 0; off+ackSlot <= len(b) && off < 2*ackSlot; off += ackSlot {
		s := b[off : off+ackSlot]
		if crc32.Checksum(s[:8], castagnoli) == binary.LittleEndian.Uint32(s[8:]) {
			mark, ok = max(mark, binary.LittleEndian.Uint64(s)), true
		}
	}
	if !ok {
		return 0, errAckedDamaged
	}
	return mark, nil
}

// writeAcked replaces dir's acked file, durably, with both slots holding
// seq (at creation and at recovery).
func writeAcked(dir string, seq uint64) error {
	var b [2 * ackSlot]byte
	encodeAckSlot(b[:], seq)
	encodeAckSlot(b[ackSlot:], seq)
	return writeFileAtomic(filepath.Join(dir, ackedName), b[:])
}

// raiseAcked makes the mark at least seq, durably, before the batch ending
// at seq is answered, writing through f, the acked file (pinned by the
// batch's write, so that a tenant holds it only while it is written). Every
// seq up to l.synced is durable in its segment, so one write covers every
// group that got that far: groups whose fsyncs end while a mark is being
// written share the next one. A failure is a failed write: the caller
// stops the tenant.
func (l *Log) raiseAcked(f *os.File, seq uint64) error {
	l.ackMu.Lock()
	defer l.ackMu.Unlock()
	if l.ackedMark >= seq {
		return nil
	}
	l.mu.Lock()
	mark := max(l.synced, seq)
	l.mu.Unlock()
	var b [ackSlot]byte
	encodeAckSlot(b[:], mark)
	_, err := f.WriteAt(b[:], int64(l.ackWrites%2)*ackSlot)
	if err == nil {
		err = l.store.opts.faults.datasync(f)
	}
	if err != nil {
		return fmt.Errorf("acked mark: %w", err)
	}
	l.ackWrites++
	l.ackedMark = mark
	return nil
}

// datasync makes the acked file's new bytes durable (its size never
// changes, so its data is all there is to write).
func (fs *faults) datasync(f *os.File) error {
	if fs != nil && fs.ackSync != nil {
		return fs.ackSync(f)
	}
	return datasync(f)
}
