package post

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for n := range 40 {
		limit := min(backoffCap, backoffBase<<min(n, 20))
		var top time.Duration
		for range 200 {
			d := backoff(n)
			if d < 0 || d > limit {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", n, d, limit)
			}
			top = max(top, d)
		}
		// Full jitter spreads over the whole range: 200 draws all in the
		// lower quarter would happen with probability 4^-200.
		if top < limit/4 {
			t.Errorf("backoff(%d): 200 draws all below %v", n, limit/4)
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := map[int]bool{
		200: false, 202: false, 400: false, 401: false, 403: false, 404: false,
		405: false, 408: true, 413: false, 415: false, 429: true,
		500: true, 501: false, 502: true, 503: true, 504: true, 599: true,
	}
	for status, want := range tests {
		if got := retryable(status); got != want {
			t.Errorf("retryable(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", -1},
		{"0", 0},
		{" 3 ", 3 * time.Second},
		{"-1", -1},
		{"soon", -1},
		{"99999999999", 24 * time.Hour},
		{"Fri, 27 Nov 2026 12:00:10 GMT", 10 * time.Second},
		{"Fri, 27 Nov 2026 11:00:00 GMT", 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.h, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}
