package metrics

import (
	"sync/atomic"
	"testing"
)

// The data directory's gauges read their sources at each scrape.
func TestDataDirGauges(t *testing.T) {
	m := New(Options{})
	var failed, open atomic.Int64
	m.DataDir(func() int { return int(failed.Load()) }, func() int { return int(open.Load()) })
	for _, tt := range []struct{ failed, open int64 }{{0, 0}, {2, 17}, {0, 3}} {
		failed.Store(tt.failed)
		open.Store(tt.open)
		fams := scrape(t, metricsOnly(m))
		if got := val(t, fams, "tl_relay_tenants_failed"); got != float64(tt.failed) {
			t.Errorf("tl_relay_tenants_failed = %v, want %d", got, tt.failed)
		}
		if got := val(t, fams, "tl_relay_data_open_files"); got != float64(tt.open) {
			t.Errorf("tl_relay_data_open_files = %v, want %d", got, tt.open)
		}
	}
}
