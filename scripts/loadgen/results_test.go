package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fields splits a result line into its leading words and its key=value map,
// as scripts/benchsum reads it.
func fields(t *testing.T, line string) ([]string, map[string]string) {
	t.Helper()
	if strings.ContainsAny(line, "\n\t") {
		t.Fatalf("line holds a newline or tab: %q", line)
	}
	var words []string
	kv := map[string]string{}
	for _, f := range strings.Split(line, " ") {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case f == "":
			t.Fatalf("empty field (double space) in %q", line)
		case !ok:
			if len(kv) > 0 {
				t.Fatalf("word %q after the key=value fields in %q", f, line)
			}
			words = append(words, f)
		default:
			if _, dup := kv[k]; dup {
				t.Fatalf("key %q twice in %q", k, line)
			}
			kv[k] = v
		}
	}
	return words, kv
}

func TestResultLine(t *testing.T) {
	sc := scenarios(false)[1] // A
	line := resultLine(sc, false, outcome{
		delivered: 500_000, expected: 500_100, gaps: 40, lost: 10, missing: 50, dup: 0,
		delivPerSec: 49_888.6, p50: 1700 * time.Microsecond, p95: 16400 * time.Microsecond,
		p99: 32800 * time.Microsecond, max: 67800 * time.Microsecond,
		postedPerSec: 500.04, postP99: 19500 * time.Microsecond,
		relayCPU: 8800 * time.Millisecond, genCPU: 6800 * time.Millisecond, rssKiB: 188_416,
	})
	words, kv := fields(t, line)
	if strings.Join(words, " ") != "fanout A" {
		t.Errorf("words %q, want fanout A", words)
	}
	want := map[string]string{
		"quick": "0", "subs": "10000", "tenants": "100", "rate": "500", "batch": "1", "duration_s": "10",
		"delivered": "500000", "expected": "500100", "gaps": "40", "lost": "10", "missing": "50", "dup": "0",
		"post_errors": "0", "deliv_s": "49889", "p50_ms": "1.700", "p95_ms": "16.400", "p99_ms": "32.800",
		"max_ms": "67.800", "posted_s": "500.0", "post_p99_ms": "19.500", "relay_cpu_s": "8.800",
		"rss_kib": "188416", "gen_cpu_s": "6.800", "deliv_per_cpu_s": "56818",
	}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("%s=%q, want %q", k, kv[k], v)
		}
	}
	if len(kv) != len(want) {
		t.Errorf("%d fields, want %d: %s", len(kv), len(want), line)
	}

	// Quick D: the idle scenario has RSS fields only.
	d := scenarios(true)[4]
	words, kv = fields(t, resultLine(d, true, outcome{rssKiB: 40_000, baseKiB: 9_000, perSubKiB: 15.5}))
	if strings.Join(words, " ") != "fanout D" || kv["quick"] != "1" || kv["subs"] != "2000" || kv["idle"] != "1" ||
		kv["rss_kib"] != "40000" || kv["base_kib"] != "9000" || kv["per_sub_kib"] != "15.50" {
		t.Errorf("D: %q %v", words, kv)
	}
	if _, ok := kv["deliv_s"]; ok {
		t.Errorf("D has deliv_s: %v", kv)
	}

	// No relay CPU measured: no division by zero.
	_, kv = fields(t, resultLine(sc, false, outcome{delivered: 5}))
	if kv["deliv_per_cpu_s"] != "0" {
		t.Errorf("deliv_per_cpu_s=%q with no CPU, want 0", kv["deliv_per_cpu_s"])
	}
}

func TestAppendResult(t *testing.T) {
	if err := appendResult("", "ignored"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "results")
	for _, l := range []string{"fanout 0 a=1", "fanout A b=2"} {
		if err := appendResult(file, l); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "fanout 0 a=1\nfanout A b=2\n" {
		t.Errorf("file holds %q", b)
	}
}

// TestBeaconScenario: W is the web beacons' scenario, run only when named,
// with the per-address limit raised, and its line is make bench's
// "beacon" record.
func TestBeaconScenario(t *testing.T) {
	var w scenario
	for _, sc := range scenarios(true) {
		if sc.name == "W" {
			w = sc
		}
	}
	if !w.beacon || !w.extra || w.batch != 1 || strings.Join(w.args, " ") != "--ingest-rate 1000000" {
		t.Fatalf("scenario W: %+v", w)
	}
	words, kv := fields(t, resultLine(w, true, outcome{postedPerSec: 18732.1, postP99: 4600 * time.Microsecond}))
	if strings.Join(words, " ") != "beacon" || kv["posted_s"] != "18732.1" || kv["batch"] != "1" || kv["quick"] != "1" {
		t.Errorf("W's result line: %v %v", words, kv)
	}
}
