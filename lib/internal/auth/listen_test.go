package auth

import (
	"strings"
	"testing"
)

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr             string
		tokens, insecure bool
		ok               bool
	}{
		{"127.0.0.1:8787", false, false, true},
		{"127.0.0.2:0", false, false, true},
		{"localhost:8787", false, false, true},
		{"[::1]:8787", false, false, true},
		{"[::ffff:127.0.0.1]:1", false, false, true},
		{":8787", false, false, false},
		{"0.0.0.0:8787", false, false, false},
		{"[::]:8787", false, false, false},
		{"192.168.1.10:8787", false, false, false},
		{"relay.example.com:8787", false, false, false},
		{"localhost.evil.com:8787", false, false, false},
		{"0.0.0.0:8787", true, false, true},
		{"0.0.0.0:8787", false, true, true},
		{":8787", true, true, true},
		{"no-port", false, false, false},
	}
	for _, tt := range tests {
		err := CheckListen(tt.addr, tt.tokens, tt.insecure)
		if (err == nil) != tt.ok {
			t.Errorf("CheckListen(%q, tokens=%v, insecure=%v) = %v, want ok=%v", tt.addr, tt.tokens, tt.insecure, err, tt.ok)
		}
		if err != nil && tt.addr != "no-port" && (!strings.Contains(err.Error(), "--tokens") || !strings.Contains(err.Error(), "--insecure")) {
			t.Errorf("error %q does not name both --tokens and --insecure", err)
		}
	}
}

func TestOrigins(t *testing.T) {
	o, err := ParseOrigins([]string{"https://dash.example.com", "http://localhost:3000/,HTTPS://Other.example"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := ParseOrigins([]string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	none, _ := ParseOrigins(nil)
	var nilOrigins *Origins
	tests := []struct {
		origin              string
		want, wantAll, none bool
	}{
		{"", true, true, true}, // the command-line clients send no Origin
		{"https://dash.example.com", true, true, false},
		{"https://DASH.example.com", true, true, false},
		{"http://dash.example.com", false, true, false},
		{"https://dash.example.com:8443", false, true, false},
		{"https://dash.example.com.evil.net", false, true, false},
		{"http://localhost:3000", true, true, false},
		{"https://other.example", true, true, false},
		{"null", false, true, false},
		{"http://127.0.0.1:8787", false, true, false}, // same host as the relay: still refused
	}
	for _, tt := range tests {
		if got := o.Allowed(tt.origin); got != tt.want {
			t.Errorf("Allowed(%q) = %v, want %v", tt.origin, got, tt.want)
		}
		if got := all.Allowed(tt.origin); got != tt.wantAll {
			t.Errorf("* Allowed(%q) = %v, want %v", tt.origin, got, tt.wantAll)
		}
		if got := none.Allowed(tt.origin); got != tt.none {
			t.Errorf("no --allow-origin: Allowed(%q) = %v, want %v", tt.origin, got, tt.none)
		}
		if got := nilOrigins.Allowed(tt.origin); got != tt.none {
			t.Errorf("nil: Allowed(%q) = %v, want %v", tt.origin, got, tt.none)
		}
	}
	for _, bad := range []string{"dash.example.com", "null", "ftp://x", "https://x/path", "https://x?q", "https://u@x", "https://"} {
		if _, err := ParseOrigins([]string{bad}); err == nil {
			t.Errorf("ParseOrigins(%q) succeeded", bad)
		}
	}
}
