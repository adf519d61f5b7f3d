package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// outcome is what one scenario measured, as its row of the table shows it.
// For D (idle) only the RSS fields are set.
type outcome struct {
	delivered, expected, gaps, lost, dup uint64
	missing                              int64 // not yet delivered when the drain ended
	postErrors                           uint64
	delivPerSec                          float64
	p50, p95, p99, max                   time.Duration
	postedPerSec                         float64
	postP99                              time.Duration
	relayCPU, genCPU                     time.Duration
	rssKiB                               int
	baseKiB                              int     // D: RSS with the 20 warm-up subscribers
	perSubKiB                            float64 // D: RSS per idle subscriber
}

// resultLine is the machine-readable form of a row, for the summary of make
// bench (scripts/benchsum): "fanout", the scenario, then key=value fields,
// none with spaces. Durations are in ms or s as their names say, RSS in KiB.
func resultLine(sc scenario, quick bool, o outcome) string {
	q := 0
	if quick {
		q = 1
	}
	// The record's name: "fanout A", "fanout tls A", "fanout pinned B".
	f := []string{"fanout", sc.name}
	switch {
	case sc.beacon:
		f = []string{"beacon"} // make bench's "beacon" row
	case sc.secure:
		f = []string{"fanout", "tls", sc.name}
	case sc.pin != "":
		f = []string{"fanout", "pinned", sc.name}
	}
	f = append(f,
		fmt.Sprintf("quick=%d", q),
		fmt.Sprintf("subs=%d", sc.subs),
		fmt.Sprintf("tenants=%d", sc.tenants),
	)
	if sc.pin != "" {
		f = append(f, "relay_cpus="+sc.pin)
	}
	if sc.idle {
		f = append(f, "idle=1",
			fmt.Sprintf("rss_kib=%d", o.rssKiB),
			fmt.Sprintf("base_kib=%d", o.baseKiB),
			fmt.Sprintf("per_sub_kib=%.2f", o.perSubKiB))
		return strings.Join(f, " ")
	}
	perCPU := 0.0
	if o.relayCPU > 0 {
		perCPU = float64(o.delivered) / o.relayCPU.Seconds()
	}
	f = append(f,
		fmt.Sprintf("rate=%g", sc.rate),
		fmt.Sprintf("batch=%d", sc.batch),
		fmt.Sprintf("duration_s=%g", sc.duration.Seconds()),
		fmt.Sprintf("delivered=%d", o.delivered),
		fmt.Sprintf("expected=%d", o.expected),
		fmt.Sprintf("gaps=%d", o.gaps),
		fmt.Sprintf("lost=%d", o.lost),
		fmt.Sprintf("missing=%d", max(o.missing, 0)),
		fmt.Sprintf("dup=%d", o.dup),
		fmt.Sprintf("post_errors=%d", o.postErrors),
		fmt.Sprintf("deliv_s=%.0f", o.delivPerSec),
		fmt.Sprintf("p50_ms=%.3f", msf(o.p50)),
		fmt.Sprintf("p95_ms=%.3f", msf(o.p95)),
		fmt.Sprintf("p99_ms=%.3f", msf(o.p99)),
		fmt.Sprintf("max_ms=%.3f", msf(o.max)),
		fmt.Sprintf("posted_s=%.1f", o.postedPerSec),
		fmt.Sprintf("post_p99_ms=%.3f", msf(o.postP99)),
		fmt.Sprintf("relay_cpu_s=%.3f", o.relayCPU.Seconds()),
		fmt.Sprintf("rss_kib=%d", o.rssKiB),
		fmt.Sprintf("gen_cpu_s=%.3f", o.genCPU.Seconds()),
		fmt.Sprintf("deliv_per_cpu_s=%.0f", perCPU),
	)
	return strings.Join(f, " ")
}

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

// appendResult appends line to file (make bench's $BENCH_RESULTS); nothing
// when file is "".
func appendResult(file, line string) error {
	if file == "" {
		return nil
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
