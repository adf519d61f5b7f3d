package relay

import (
	"net/url"
	"testing"
)

// FuzzStreamQuery feeds arbitrary query strings to the subscribe parameters'
// parser (type, path, last, since, epoch, limit, until), then applies what it accepted: it
// must never panic, never accept last together with since, and always start
// the cursor within the log's bounds (at most newest+1); the filter must
// answer for any line without panicking.
func FuzzStreamQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"type=click",
		"type=click,pageview&type=custom",
		"path=/checkout&path=/cart",
		"last=10",
		"last=0",
		"since=41&epoch=abc",
		"since=18446744073709551615",
		"last=-1",
		"last=1&since=2",
		"type=hack",
		"type=",
		"path=%00%ff",
		"since=1e3",
		"%zz=1",
		"type=click;path=/x",
		"types=click",
		"last=5&limit=5",
		"limit=0",
		"until=now&last=3",
		"until=7&since=2",
	} {
		f.Add(s, uint64(1), uint64(100), `{"seq":5,"tenant_id":"acme","timestamp":1,"type":"click","path":"/checkout/x","metadata":{}}`)
	}
	f.Fuzz(func(t *testing.T, raw string, oldest, newest uint64, line string) {
		// Like r.URL.Query(): keep what parsed, ignore the error.
		q, _ := url.ParseQuery(raw)
		sq, herr := parseStreamQuery(q)
		if herr != nil {
			if herr.Status != 400 || herr.Msg == "" {
				t.Fatalf("refusal %d %q, want a 400 with a message", herr.Status, herr.Msg)
			}
			return
		}
		if sq.hasSince && sq.last >= 0 {
			t.Fatal("accepted both last and since")
		}
		if sq.last < -1 || sq.limit < -1 {
			t.Fatalf("last = %d, limit = %d", sq.last, sq.limit)
		}
		for k := range q {
			if !streamParams[k] {
				t.Fatalf("accepted unknown parameter %q", k)
			}
		}
		// A log holds oldest..newest (oldest = newest+1 when empty).
		if oldest == 0 || newest == ^uint64(0) || oldest > newest+1 {
			return
		}
		cursor, gap := sq.start(oldest, newest, "E")
		if cursor > newest+1 {
			t.Fatalf("cursor %d past newest+1 = %d (query %q)", cursor, newest+1, raw)
		}
		if gap != nil && gap.To >= oldest {
			t.Fatalf("epoch gap %+v overlaps the history from %d", gap, oldest)
		}
		sq.filter.match([]byte(line))
	})
}
