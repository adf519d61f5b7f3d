package post

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// BenchmarkPost measures the client alone: lines read, validated, batched
// and sent to a relay that only drains the body and answers 202.
func BenchmarkPost(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"accepted":1,"first_seq":1,"last_seq":1,"epoch":"e"}`)
	}))
	defer srv.Close()
	in := genEvents(b.N, "acme", "globex", "initech")
	if f := os.Getenv("TL_POST_BENCH_FILE"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		in = string(data)
	}
	b.SetBytes(int64(len(in) / max(b.N, 1)))
	b.ReportAllocs()
	b.ResetTimer()
	r := runPost(b, nil, srv.URL, strings.NewReader(in), "-q")
	if r.code != 0 {
		b.Fatal(r.stderr)
	}
}
