package disklog

import (
	"encoding/binary"
	"hash/crc32"
)

// A record on disk is a 16-byte header followed by the body, little endian:
//
//	offset 0  crc32c   uint32  Castagnoli CRC of bytes 4..16+len (header rest and body)
//	offset 4  lenflags uint32  low 30 bits: body length; bit 31: last record of its batch;
//	                           bit 30: a key record
//	offset 8  seq      uint64  the record's sequence number
//	offset 16 body     len bytes
//
// The checksum covers the length and the seq, so a flipped bit anywhere in a
// record (header or body) is detected. The batch-end flag makes a batch
// atomic on disk: a crash in the middle of writing a batch leaves records
// without a closing flag at the tail of the newest segment, and recovery
// drops them all.
//
// A key record carries a batch's Idempotency-Key and opens that batch (so
// the key is durable exactly when the batch is): its seq is the batch's
// first seq, and its body the batch's last seq (8 bytes) and then the key.
// It is not an event: readers skip it.
const (
	headerSize = 16
	// MaxBody bounds a record's body, and the length a header may claim
	// (events are at most 64 KiB; this leaves room for framing while
	// rejecting garbage lengths).
	MaxBody = 1 << 20
	// batchEnd marks the last record of a batch in lenflags.
	batchEnd = 1 << 31
	// keyRecord marks a key record in lenflags.
	keyRecord = 1 << 30
	lenMask   = keyRecord - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends the encoded record for (seq, body) to dst.
func appendRecord(dst []byte, seq uint64, body []byte, last bool) []byte {
	start := len(dst)
	lf := uint32(len(body))
	if last {
		lf |= batchEnd
	}
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, patched below
	dst = binary.LittleEndian.AppendUint32(dst, lf)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

// sealRecord fills in the header of the record that fills rec (header
// space, then the body): length, batch-end flag, seq and checksum.
func sealRecord(rec []byte, seq uint64, last bool) {
	lf := uint32(len(rec) - headerSize)
	if last {
		lf |= batchEnd
	}
	binary.LittleEndian.PutUint32(rec[4:], lf)
	binary.LittleEndian.PutUint64(rec[8:], seq)
	binary.LittleEndian.PutUint32(rec, crc32.Checksum(rec[4:], castagnoli))
}

// recordBodies appends to dst the bodies of the well-formed event records
// in buf (which the caller encoded), each capped at its own length.
func recordBodies(dst [][]byte, buf []byte) [][]byte {
	for p := 0; p < len(buf); {
		h := readHeader(buf[p:])
		end := p + headerSize + h.n
		if !h.key {
			dst = append(dst, buf[p+headerSize:end:end])
		}
		p = end
	}
	return dst
}

// Key is an Idempotency-Key found on disk with the batch it published.
type Key struct {
	Key         string
	First, Last uint64
}

// appendKeyRecord appends the key record opening the batch first..last.
func appendKeyRecord(dst []byte, key string, first, last uint64) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	dst = binary.LittleEndian.AppendUint64(dst, last)
	dst = append(dst, key...)
	sealRecord(dst[start:], first, false)
	lf := binary.LittleEndian.Uint32(dst[start+4:]) | keyRecord
	binary.LittleEndian.PutUint32(dst[start+4:], lf)
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], castagnoli))
	return dst
}

// decodeKey reads a key record's body.
func decodeKey(first uint64, body []byte) (Key, bool) {
	if len(body) < 8 {
		return Key{}, false
	}
	last := binary.LittleEndian.Uint64(body)
	return Key{Key: string(body[8:]), First: first, Last: last}, last >= first
}

// header is a decoded, not yet verified, record header.
type header struct {
	crc  uint32
	n    int  // body length
	last bool // batch end
	key  bool // a key record
	seq  uint64
}

func readHeader(b []byte) header {
	lf := binary.LittleEndian.Uint32(b[4:])
	return header{
		crc:  binary.LittleEndian.Uint32(b),
		n:    int(lf & lenMask),
		last: lf&batchEnd != 0,
		key:  lf&keyRecord != 0,
		seq:  binary.LittleEndian.Uint64(b[8:]),
	}
}

// parseStatus says what parseRecord found.
type parseStatus int

const (
	recOK      parseStatus = iota
	recShort               // the record runs past the end of b (torn, or b ends mid-record)
	recCorrupt             // the record fits in b but its checksum or length is wrong
)

// parseRecord decodes the record at the start of b. On recOK it returns the
// header and the record's total size.
func parseRecord(b []byte) (header, int, parseStatus) {
	if len(b) < headerSize {
		return header{}, 0, recShort
	}
	h := readHeader(b)
	if h.n > MaxBody {
		return h, 0, recCorrupt
	}
	size := headerSize + h.n
	if size > len(b) {
		return h, 0, recShort
	}
	if crc32.Checksum(b[4:size], castagnoli) != h.crc {
		return h, size, recCorrupt
	}
	return h, size, recOK
}
