package client

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	top := func(n int64) int64 { return n - 1 } // the ceiling itself
	b := Backoff{Base: 100 * time.Millisecond, Cap: 10 * time.Second, Rand: top}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w {
			t.Errorf("ceiling of retry %d = %v, want %v", i+1, got, w)
		}
	}
	for _, n := range []int{63, 64, 1000, 1 << 30} {
		if got := b.Delay(n); got != 10*time.Second {
			t.Errorf("retry %d: %v, want the cap", n, got)
		}
	}
	b.Rand = func(int64) int64 { return 0 }
	if got := b.Delay(5); got != 0 {
		t.Errorf("full jitter floor = %v, want 0", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 3 ", 3 * time.Second, true},
		{"7", 7 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"99999999999", 24 * time.Hour, true},
		{"9223372036854775807", 24 * time.Hour, true},
		{"Fri, 27 Nov 2026 12:00:10 GMT", 10 * time.Second, true},
		{"Fri, 27 Nov 2026 11:00:00 GMT", 0, true},
		{"Fri, 27 Nov 2099 11:00:00 GMT", 24 * time.Hour, true},
	}
	for _, tt := range tests {
		if got, ok := RetryAfter(tt.h, now); got != tt.want || ok != tt.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tt.h, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRetryable(t *testing.T) {
	for status, want := range map[int]bool{200: false, 202: false, 400: false, 401: false, 403: false, 404: false, 405: false, 408: true, 415: false, 413: false, 429: true, 500: true, 501: false, 502: true, 503: true, 504: true, 599: true} {
		if got := Retryable(status); got != want {
			t.Errorf("Retryable(%d) = %v, want %v", status, got, want)
		}
	}
}

// TestBackoffJitter: with math/rand, the waits stay within the ceiling and
// spread over all of it (200 draws all in the lower quarter would happen
// with probability 4^-200).
func TestBackoffJitter(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Cap: 10 * time.Second, Rand: rand.Int64N}
	for n := 1; n <= 40; n++ {
		limit := min(b.Cap, b.Base<<min(n-1, 20))
		var top time.Duration
		for range 200 {
			d := b.Delay(n)
			if d < 0 || d > limit {
				t.Fatalf("Delay(%d) = %v, want within [0, %v]", n, d, limit)
			}
			top = max(top, d)
		}
		if top < limit/4 {
			t.Errorf("Delay(%d): 200 draws all below %v", n, limit/4)
		}
	}
}
