package auth

import (
	"strings"
	"testing"
)

const ingestTok = "ingest-token-0123456789abcdef0123"

func TestParseIngest(t *testing.T) {
	h := Hash(ingestTok).String()
	other := Hash("other-token-0123456789abcdef0123").String()
	tests := []struct {
		name, file, wantErr string
	}{
		{"ok", h + " ingest acme shop origins=https://shop.example,http://localhost:3000\n", ""},
		{"origins before name", h + " ingest acme origins=https://shop.example shop\n", ""},
		{"any origin", h + " ingest acme origins=*\n", ""},
		{"no origins", h + " ingest acme shop\n", "needs origins="},
		{"empty origins", h + " ingest acme origins=\n", "origin \"\""},
		{"with publish", h + " ingest,publish acme origins=https://a.example\n", "scope ingest goes alone"},
		{"prefix", h + " ingest acme-* origins=https://a.example\n", "one tenant, named in full"},
		{"all", h + " ingest * origins=https://a.example\n", "one tenant, named in full"},
		{"two tenants", h + " ingest acme,beta origins=https://a.example\n", "one tenant, named in full"},
		{"bad origin", h + " ingest acme origins=https://a.example/path\n", "want scheme://host"},
		{"ftp origin", h + " ingest acme origins=ftp://a.example\n", "want scheme://host"},
		{"origins on publish", other + " publish acme origins=https://a.example\n", "only for ingest keys"},
		{"two origins fields", h + " ingest acme origins=https://a.example origins=https://b.example\n", "more than one"},
		{"ingest twice", h + " ingest acme origins=https://a.example\n" + h + " ingest beta origins=https://a.example\n", "tokens:2: an ingest key has one line only"},
		{"ingest then publish", h + " ingest acme origins=https://a.example\n" + h + " publish beta\n", "tokens:2: this token is an ingest key"},
		{"publish then ingest", h + " publish beta\n" + h + " ingest acme origins=https://a.example\n", "tokens:2: an ingest key has one line only"},
		{"five fields", h + " ingest acme a b origins=https://a.example\n", "got 5 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("tokens", []byte(tt.file))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestAuthorizeIngest(t *testing.T) {
	const pubTok = "publish-token-0123456789abcdef012"
	file := Hash(ingestTok).String() + " ingest acme shop origins=https://shop.example,http://localhost:3000\n" +
		Hash(pubTok).String() + " publish,subscribe * backend\n"
	tab, err := Parse("tokens", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		token, tenant, origin string
		isIngest              bool
		status                int // 0: allowed
	}{
		{ingestTok, "acme", "https://shop.example", true, 0},
		{ingestTok, "acme", "https://SHOP.example/", true, 0},
		{ingestTok, "acme", "http://localhost:3000", true, 0},
		{ingestTok, "acme", "", true, 403},                         // no Origin: curl, a script
		{ingestTok, "acme", "https://evil.example", true, 403},     // another page
		{ingestTok, "acme", "http://shop.example", true, 403},      // another scheme
		{ingestTok, "acme", "https://shop.example:444", true, 403}, // another port
		{ingestTok, "beta", "https://shop.example", true, 403},     // another tenant
		{ingestTok, "acme-eu", "https://shop.example", true, 403},
		{pubTok, "acme", "https://shop.example", false, 0}, // not an ingest key: Authorize decides
		{"unknown-token-0123456789abcdef01", "acme", "https://shop.example", false, 0},
		{"", "acme", "https://shop.example", false, 0},
	}
	for _, tt := range tests {
		id, isIngest, err := tab.AuthorizeIngest(tt.token, tt.tenant, tt.origin)
		if isIngest != tt.isIngest || Status(err) != tt.status && !(tt.status == 0 && err == nil) {
			t.Errorf("AuthorizeIngest(%.8s…, %q, %q) = %v, %v, want %v, status %d", tt.token, tt.tenant, tt.origin, isIngest, err, tt.isIngest, tt.status)
		}
		if isIngest && id.Name != "shop" {
			t.Errorf("ingest key's ID = %s, want shop", id)
		}
		if err != nil && strings.Contains(err.Error(), tt.token) {
			t.Errorf("error %q shows the token", err)
		}
	}
	// The ordinary checks never let an ingest key through: not to publish
	// (that needs its Origin, which only AuthorizeIngest checks), not to
	// read, not to administer.
	for _, s := range []Scope{Publish, Subscribe, Admin, Publish | Subscribe} {
		for _, tenant := range []string{"acme", "beta", ""} {
			if _, err := tab.Authorize(ingestTok, tenant, s); Status(err) != 403 {
				t.Errorf("Authorize(ingest key, %q, %s) = %v, want 403", tenant, s, err)
			}
		}
	}
	for _, tt := range []struct {
		tenant, origin string
		want           bool
	}{
		{"acme", "https://shop.example", true},
		{"acme", "http://localhost:3000", true},
		{"acme", "https://evil.example", false},
		{"acme", "", false},
		{"beta", "https://shop.example", false},
	} {
		if got := tab.IngestOrigin(tt.tenant, tt.origin); got != tt.want {
			t.Errorf("IngestOrigin(%q, %q) = %v, want %v", tt.tenant, tt.origin, got, tt.want)
		}
	}
	var nilStore *Store
	if _, isIngest, err := nilStore.AuthorizeIngest(ingestTok, "acme", "https://shop.example"); isIngest || err != nil || nilStore.IngestOrigin("acme", "https://shop.example") {
		t.Error("a nil Store has ingest keys")
	}
}

func TestOriginsPerTenant(t *testing.T) {
	o, err := ParseOrigins([]string{"https://dash.example", "acme=https://shop.example,acme-*=http://localhost:3000", "open=*"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tenant, origin string
		publishes      bool
	}{
		{"acme", "https://shop.example", true},
		{"acme", "https://SHOP.example", true},
		{"beta", "https://shop.example", false},
		{"acme-eu", "http://localhost:3000", true},
		{"acme", "http://localhost:3000", false},
		{"acme-eu", "https://shop.example", false},
		{"beta", "https://dash.example", true}, // relay-wide
		{"open", "https://anything.example", true},
		{"beta", "https://anything.example", false},
		{"beta", "", true}, // not a web page
	}
	for _, tt := range tests {
		if got := o.Publishes(tt.tenant, tt.origin); got != tt.publishes {
			t.Errorf("Publishes(%q, %q) = %v, want %v", tt.tenant, tt.origin, got, tt.publishes)
		}
	}
	// Streams look at the relay-wide list only.
	for _, origin := range []string{"https://shop.example", "http://localhost:3000", "https://anything.example"} {
		if o.Allowed(origin) {
			t.Errorf("Allowed(%q): a TENANT=ORIGIN value lets pages read", origin)
		}
	}
	for _, bad := range []string{"acme=", "acme=ftp://x", "a b=https://x.example", "=https://x.example", "acme=https://x.example/p", "ac*me=https://x.example"} {
		if _, err := ParseOrigins([]string{bad}); err == nil {
			t.Errorf("ParseOrigins(%q) accepted", bad)
		}
	}
	var nilOrigins *Origins
	if nilOrigins.Publishes("acme", "https://x.example") || !nilOrigins.Publishes("acme", "") {
		t.Error("nil Origins")
	}
}
