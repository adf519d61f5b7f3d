package auth

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := Hash("a-token-of-sufficient-length").String()
	tests := []struct {
		name    string
		file    string
		tokens  int
		wantErr string // substring; "" for success
	}{
		{"empty", "", 0, ""},
		{"comments and blanks", "# tokens\n\n   \n\t# indented comment\n", 0, ""},
		{"one line", good + " publish acme\n", 1, ""},
		{"name and comment", good + " publish,subscribe acme,acme-*,* ci-bot # the CI\n", 1, ""},
		{"crlf", good + " publish acme\r\n", 1, ""},
		{"no final newline", good + " admin *", 1, ""},
		{"hash without sha256:", good[7:] + " admin *", 0, "tokens:1: token hash"},
		{"upper-case hex with prefix", "sha256:" + strings.ToUpper(good[7:]) + " admin *", 1, ""},
		{"same token twice adds up", good + " publish acme\n" + good + " subscribe beta\n", 1, ""},
		{"two fields", "# x\n" + good + " publish\n", 0, "tokens:2: want \"sha256:HEX SCOPES TENANTS [NAME] [origins=LIST]\", got 2 fields"},
		{"five fields", good + " publish acme name extra\n", 0, "tokens:1: want"},
		{"plain token instead of hash", "s3cret-token publish acme\n", 0, "tokens:1: token hash \"s3cret-token\" must start with \"sha256:\""},
		{"short hash", "sha256:abcd publish acme\n", 0, "tokens:1: token hash must have 64 hex digits, got 4"},
		{"not hex", "sha256:" + strings.Repeat("zz", 32) + " publish acme\n", 0, "tokens:1: token hash is not hex"},
		{"unknown scope", "\n\n" + good + " publsh acme\n", 0, "tokens:3: unknown scope \"publsh\""},
		{"empty scope", good + " publish,,admin acme\n", 0, "tokens:1: unknown scope \"\""},
		{"bad tenant", good + " publish acme/x\n", 0, "tokens:1: tenant pattern \"acme/x\""},
		{"star in the middle", good + " publish a*b\n", 0, "tokens:1: tenant pattern \"a*b\""},
		{"double star", good + " publish acme**\n", 0, "tokens:1: tenant pattern \"acme**\""},
		{"prefix starting with dash", good + " publish -x*\n", 0, "tokens:1: tenant pattern \"-x*\""},
		{"empty pattern", good + " publish acme,\n", 0, "tokens:1: tenant pattern \"\""},
		{"bad name", good + " publish acme ci\x01bot\n", 0, "tokens:1: name"},
		{"admin on one tenant", good + " admin acme\n", 0, "tokens:1: admin needs --tenants '*'"},
		{"admin on a prefix", good + " publish,admin acme-*\n", 0, "tokens:1: admin needs --tenants '*'"},
		{"admin on * and a tenant", good + " admin *,acme\n", 0, "tokens:1: admin needs --tenants '*'"},
		{"publish on a tenant, admin on * (two lines)", good + " publish acme\n" + good + " admin *\n", 1, ""},
		{"conflicting names", good + " publish acme one\n" + good + " publish beta two\n", 0, "tokens:2: token named \"two\" here was named \"one\" on line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse("tokens", []byte(tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if tab.Len() != tt.tokens {
				t.Errorf("Len() = %d, want %d", tab.Len(), tt.tokens)
			}
		})
	}
}

// matrixFile grants, per token, the rights spelled out in matrixWant.
const matrixFile = `# the 401/403 matrix
{pub-acme}    publish           acme        pub-acme
{sub-prefix}  subscribe         acme-*
{both-all}    publish,subscribe *           both-all
{admin-all}   admin             *
{split}       publish           acme
{split}       subscribe         beta-*,gamma
`

// matrixWant lists, for each token, the tenants on which it holds each
// scope; "" is the global right (only "*" grants it).
var matrixWant = map[string]map[Scope][]string{
	"pub-acme":   {Publish: {"acme"}},
	"sub-prefix": {Subscribe: {"acme-", "acme-eu", "acme-1.x"}},
	"both-all":   {Publish: {"acme", "acme-", "acme-eu", "acme-1.x", "acmex", "beta-1", "gamma", "other", ""}, Subscribe: {"acme", "acme-", "acme-eu", "acme-1.x", "acmex", "beta-1", "gamma", "other", ""}},
	"admin-all":  {Admin: {"acme", "acme-", "acme-eu", "acme-1.x", "acmex", "beta-1", "gamma", "other", ""}},
	"split":      {Publish: {"acme"}, Subscribe: {"beta-1", "gamma"}},
}

func matrixToken(name string) string { return "tok-" + name + "-0123456789abcdef0123456789" }

func matrixTable(t *testing.T) *Table {
	t.Helper()
	file := matrixFile
	for name := range matrixWant {
		file = strings.ReplaceAll(file, "{"+name+"}", Hash(matrixToken(name)).String())
	}
	tab, err := Parse("tokens", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestAuthorizeMatrix(t *testing.T) {
	tab := matrixTable(t)
	tenants := []string{"acme", "acme-", "acme-eu", "acme-1.x", "acmex", "beta-1", "gamma", "other", ""}
	scopes := []Scope{Publish, Subscribe, Admin}
	for name, rights := range matrixWant {
		for _, tenant := range tenants {
			for _, scope := range scopes {
				want := http.StatusOK
				if !contains(rights[scope], tenant) {
					want = http.StatusForbidden
				}
				id, err := tab.Authorize(matrixToken(name), tenant, scope)
				got := http.StatusOK
				if err != nil {
					got = Status(err)
				}
				if got != want {
					t.Errorf("token %s, %s on %q: status %d (%v), want %d", name, scope, tenant, got, err, want)
				}
				if id.Digest != Hash(matrixToken(name)) {
					t.Errorf("token %s: ID digest does not match", name)
				}
				if err != nil && strings.Contains(err.Error(), matrixToken(name)) {
					t.Errorf("error %q reveals the token", err)
				}
				if tab.Allowed(id, tenant, scope) != (want == http.StatusOK) {
					t.Errorf("Allowed(%s, %q, %s) disagrees with Authorize", name, tenant, scope)
				}
			}
		}
	}
	// Unknown and missing tokens are 401 whatever they ask for, and so is
	// the content of the file itself used as a token.
	unknown := []string{"", "nope", matrixToken("nobody"), Hash(matrixToken("both-all")).String(), matrixToken("both-all") + " "}
	for _, tok := range unknown {
		for _, tenant := range tenants {
			for _, scope := range scopes {
				_, err := tab.Authorize(tok, tenant, scope)
				if Status(err) != http.StatusUnauthorized {
					t.Errorf("token %q, %s on %q: %v, want 401", tok, scope, tenant, err)
				}
				if tok != "" && strings.Contains(err.Error(), tok) {
					t.Errorf("error %q reveals the token", err)
				}
			}
		}
	}
}

func TestIDString(t *testing.T) {
	tab := matrixTable(t)
	id, _ := tab.Authorize(matrixToken("pub-acme"), "acme", Publish)
	if id.String() != "pub-acme" {
		t.Errorf("named ID = %q", id)
	}
	id, _ = tab.Authorize(matrixToken("sub-prefix"), "acme-x", Subscribe)
	want := Hash(matrixToken("sub-prefix")).String()[:len("sha256:")+12]
	if id.String() != want {
		t.Errorf("unnamed ID = %q, want %q", id, want)
	}
	if strings.Contains(fmt.Sprint(id), matrixToken("sub-prefix")) {
		t.Errorf("ID shows the token")
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct{ header, want string }{
		{"", ""},
		{"Bearer abc", "abc"},
		{"bearer abc", "abc"},
		{"BEARER  abc ", "abc"},
		{"Basic abc", ""},
		{"Bearer", ""},
		{"Bearerabc", ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Authorization", tt.header)
		}
		if got := BearerToken(h); got != tt.want {
			t.Errorf("BearerToken(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestScopes(t *testing.T) {
	s, err := ParseScopes("subscribe,admin,publish")
	if err != nil || s != Publish|Subscribe|Admin || s.String() != "publish,subscribe,admin" {
		t.Errorf("ParseScopes = %v %v", s, err)
	}
	if Scope(0).String() != "none" {
		t.Errorf("empty scope = %q", Scope(0))
	}
	if _, err := ParseScopes(""); err == nil {
		t.Error("ParseScopes(\"\") succeeded")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// BenchmarkAuthorize measures a lookup in a table of 10,000 tokens: the
// SHA-256 of the presented token, the map lookup and the grant check.
func BenchmarkAuthorize(b *testing.B) {
	var file strings.Builder
	for i := 0; i < 10000; i++ {
		l, err := Line(fmt.Sprintf("bench-token-%08d-0123456789abcdef", i), Publish|Subscribe, fmt.Sprintf("tenant-%d,shared-*", i), "")
		if err != nil {
			b.Fatal(err)
		}
		file.WriteString(l + "\n")
	}
	tab, err := Parse("bench", []byte(file.String()))
	if err != nil {
		b.Fatal(err)
	}
	tok := fmt.Sprintf("bench-token-%08d-0123456789abcdef", 4242)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tab.Authorize(tok, "shared-eu", Publish); err != nil {
			b.Fatal(err)
		}
	}
}
