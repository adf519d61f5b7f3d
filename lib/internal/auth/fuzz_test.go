package auth

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to the token-file parser: it must never
// panic, an error must name a line that exists, and a table that parses must
// answer lookups.
func FuzzParse(f *testing.F) {
	h := Hash("seed-token-0123456789abcdef").String()
	for _, s := range []string{
		"",
		"# comment\n\n",
		h + " publish acme\n",
		h + " publish,subscribe acme,acme-*,* name # comment\n",
		h + " admin * name\n" + h + " admin acme\n",
		h + " publish acme\n" + h + " subscribe beta one\n",
		"sha256:zz publish acme\n",
		h + " publish a*b\n",
		h + " pub acme\r\n",
		"\x00\xff\n" + h,
		h + " ingest acme shop origins=https://shop.example,http://localhost:3000\n",
		h + " ingest acme origins=*\n" + h + " publish acme\n",
		h + " publish acme origins=https://a.example\n",
	} {
		f.Add([]byte(s), "seed-token-0123456789abcdef", "acme")
	}
	f.Fuzz(func(t *testing.T, data []byte, token, tenant string) {
		tab, err := Parse("f", data)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "f:") {
				t.Fatalf("error %q does not start with the file name", msg)
			}
			rest := msg[2:]
			n, convErr := strconv.Atoi(rest[:strings.IndexByte(rest, ':')])
			if convErr != nil || n < 1 || n > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("error %q names no line of the input", msg)
			}
			return
		}
		for _, s := range []Scope{Publish, Subscribe, Admin, Publish | Subscribe} {
			id, err := tab.Authorize(token, tenant, s)
			if err == nil && id.Digest != Hash(token) {
				t.Fatal("allowed with a foreign ID")
			}
			if err != nil && token != "" && len(token) > 3 && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q shows the token", err)
			}
		}
		// An ingest key passes no ordinary check, whatever the file.
		if _, isIngest, _ := tab.AuthorizeIngest(token, tenant, "https://shop.example"); isIngest {
			for _, s := range []Scope{Publish, Subscribe, Admin, Ingest} {
				if _, err := tab.Authorize(token, tenant, s); err == nil && s != Ingest {
					t.Fatalf("ingest key allowed %s", s)
				}
			}
		}
	})
}
