package disklog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func testLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// body returns the test body for seq n of a tenant.
func body(tenant string, n int) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"tenant_id":%q,"type":"click","path":"/p/%d","metadata":{}}`, n, tenant, n)
}

func mustOpen(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustLog(t testing.TB, s *Store, tenant string) *Log {
	t.Helper()
	l, err := s.Log(tenant)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendN appends n single-record batches (bodies numbered from the log's
// next seq) and returns the seq of the last.
func appendN(t testing.TB, l *Log, n int) uint64 {
	t.Helper()
	var last uint64
	for i := 0; i < n; i++ {
		_, newest := l.Bounds()
		f, la, err := l.Append([][]byte{body(l.tenant, int(newest)+1)})
		if err != nil {
			t.Fatal(err)
		}
		if f != newest+1 {
			t.Fatalf("Append got seq %d, want %d", f, newest+1)
		}
		last = la
	}
	return last
}

// readAllRecords reads every record of l from seq 1 in small pieces.
func readAllRecords(t testing.TB, l *Log) []Record {
	t.Helper()
	var out []Record
	from := uint64(1)
	for {
		recs, err := l.Read(nil, from, 7, 1<<10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		from = recs[len(recs)-1].Seq + 1
	}
}

// seqsOf returns the seqs of recs.
func seqsOf(recs []Record) []uint64 {
	s := make([]uint64, len(recs))
	for i, r := range recs {
		s[i] = r.Seq
	}
	return s
}

// checkBodies fails unless every record carries the body written for its seq.
func checkBodies(t testing.TB, tenant string, recs []Record) {
	t.Helper()
	for _, r := range recs {
		if want := body(tenant, int(r.Seq)); !bytes.Equal(r.Body, want) {
			t.Fatalf("seq %d: body %q, want %q", r.Seq, r.Body, want)
		}
	}
}

// segFiles returns the segment files of a tenant, oldest first.
func segFiles(t testing.TB, dir, tenant string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "tenants", tenant, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// copyDir copies a data directory (files one level deep under tenants/T).
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if info.Name() == "LOCK" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// setMark writes a tenant's acknowledged mark, as a crash leaves it when
// the batches after seq were written but not yet answered.
func setMark(t testing.TB, dir, tenant string, seq uint64) {
	t.Helper()
	if err := writeAcked(filepath.Join(dir, "tenants", tenant), seq); err != nil {
		t.Fatal(err)
	}
}

// epochOf reads a tenant's epoch from its meta file.
func epochOf(t testing.TB, dir, tenant string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "tenants", tenant, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m metaFile
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m.Epoch
}
