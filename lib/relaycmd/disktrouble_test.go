package relaycmd

import "testing"

func TestDiskTrouble(t *testing.T) {
	tests := []struct {
		failed map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{"b": "e2", "a": "e1"}, "data directory: 2 tenant(s) stopped by a failed write or fsync until restart: a (e1); b (e2)"},
		{map[string]string{"d": "4", "c": "3", "b": "2", "a": "1", "e": "5"},
			"data directory: 5 tenant(s) stopped by a failed write or fsync until restart: a (1); b (2); c (3); and 2 more"},
	}
	for _, tt := range tests {
		if got := diskTrouble(tt.failed); got != tt.want {
			t.Errorf("diskTrouble(%v) = %q, want %q", tt.failed, got, tt.want)
		}
	}
}
