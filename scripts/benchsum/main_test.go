package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// passing is a full run's results file, in the scripts' formats, whose
// every figure meets its goal, none by much.
const passing = `run quick=0 cores=2 load=0.80 commit=abc1234
fanout 0 quick=0 subs=0 tenants=1 rate=500 batch=1 duration_s=10 delivered=0 expected=0 gaps=0 lost=0 missing=0 dup=0 post_errors=0 deliv_s=0 p50_ms=0.000 p95_ms=0.000 p99_ms=0.000 max_ms=0.000 posted_s=500.0 post_p99_ms=3.100 relay_cpu_s=1.50 rss_kib=18432 gen_cpu_s=2.70 deliv_per_cpu_s=0
fanout A quick=0 subs=10000 tenants=100 rate=500 batch=1 duration_s=10 delivered=500100 expected=500100 gaps=0 lost=0 missing=0 dup=0 post_errors=0 deliv_s=49889 p50_ms=1.700 p95_ms=16.400 p99_ms=20.000 max_ms=67.800 posted_s=500.0 post_p99_ms=9.500 relay_cpu_s=8.80 rss_kib=188416 gen_cpu_s=6.80 deliv_per_cpu_s=56830
fanout B quick=0 subs=10000 tenants=1 rate=500 batch=1 duration_s=10 delivered=49990000 expected=50000000 gaps=10000 lost=0 missing=0 dup=0 post_errors=0 deliv_s=600000 p50_ms=119.000 p95_ms=213.000 p99_ms=254.000 max_ms=1424.000 posted_s=495.0 post_p99_ms=9.999 relay_cpu_s=10.90 rss_kib=235520 gen_cpu_s=8.20 deliv_per_cpu_s=4586239
fanout C quick=0 subs=1000 tenants=1 rate=2000 batch=20 duration_s=10 delivered=20020000 expected=20020000 gaps=0 lost=0 missing=0 dup=0 post_errors=0 deliv_s=1000000 p50_ms=16.400 p95_ms=30.700 p99_ms=43.000 max_ms=80.400 posted_s=2002.0 post_p99_ms=26.600 relay_cpu_s=10.30 rss_kib=40960 gen_cpu_s=8.40 deliv_per_cpu_s=1000000
fanout tls A quick=0 subs=10000 tenants=100 rate=500 batch=1 duration_s=10 delivered=500100 expected=500100 gaps=0 lost=0 missing=0 dup=0 post_errors=0 deliv_s=49889 p50_ms=1.700 p95_ms=16.400 p99_ms=20.000 max_ms=67.800 posted_s=500.0 post_p99_ms=9.500 relay_cpu_s=8.80 rss_kib=188416 gen_cpu_s=6.80 deliv_per_cpu_s=56830
fanout tls C quick=0 subs=1000 tenants=1 rate=2000 batch=20 duration_s=10 delivered=20020000 expected=20020000 gaps=0 lost=0 missing=0 dup=0 post_errors=0 deliv_s=1000000 p50_ms=16.400 p95_ms=30.700 p99_ms=43.000 max_ms=80.400 posted_s=2002.0 post_p99_ms=26.600 relay_cpu_s=30.30 rss_kib=40960 gen_cpu_s=8.40 deliv_per_cpu_s=660726
fanout pinned B quick=0 subs=10000 tenants=1 relay_cpus=0 rate=500 batch=1 duration_s=10 delivered=30000000 expected=50000000 gaps=20000000 lost=0 missing=0 dup=0 post_errors=0 deliv_s=300000 p50_ms=900.000 p95_ms=2213.000 p99_ms=2254.000 max_ms=3424.000 posted_s=495.0 post_p99_ms=9.999 relay_cpu_s=9.90 rss_kib=235520 gen_cpu_s=9.20 deliv_per_cpu_s=3030303
fanout D quick=0 subs=19900 tenants=1 idle=1 rss_kib=327679 base_kib=10000 per_sub_kib=8.00
beacon quick=0 subs=0 tenants=1 rate=1e+09 batch=1 duration_s=5 delivered=0 expected=0 gaps=0 lost=0 missing=0 dup=0 post_errors=0 deliv_s=0 p50_ms=0.000 p95_ms=0.000 p99_ms=0.000 max_ms=0.000 posted_s=5000.0 post_p99_ms=4.607 relay_cpu_s=3.740 rss_kib=55112 gen_cpu_s=3.769 deliv_per_cpu_s=0
fmt lines=1000000 runs=3 fast_s=0.610 gojq_path_s=2.800 jq_s=0.611 jq_version=jq-1.6 gojq_s=0.620 gojq_version=0.12.19
post lines=1000000 runs=3 events_s=300000
tail lines=1000000 bytes=200 runs=3 lines_s=1000000 live_lines_s=569516
done secs=301 load=2.10
`

// summarize returns the summary of file and the met column of each row,
// by the row's first word ("A:", "tl-post", ...).
func summarize(t *testing.T, file string) (string, map[string]string) {
	t.Helper()
	res, err := parse(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	summary(&b, res)
	met := map[string]string{}
	for _, l := range strings.Split(b.String(), "\n") {
		if !strings.HasPrefix(l, "| ") || strings.HasPrefix(l, "| row ") || strings.HasPrefix(l, "| ---") {
			continue
		}
		c := strings.Split(l, " | ")
		if len(c) != 4 {
			t.Fatalf("row of %d cells: %q", len(c), l)
		}
		met[strings.Fields(strings.TrimPrefix(c[0], "| "))[0]] = strings.TrimSpace(c[2])
	}
	if len(met) != 11 {
		t.Fatalf("%d rows, want 11:\n%s", len(met), b.String())
	}
	return b.String(), met
}

// with returns passing with field key of the record named name set to v.
func with(name, key, v string) string {
	var out []string
	for _, l := range strings.Split(passing, "\n") {
		if strings.HasPrefix(l, name+" ") {
			re := regexp.MustCompile(` ` + key + `=[^ ]*`)
			if re.MatchString(l) {
				l = re.ReplaceAllString(l, " "+key+"="+v)
			} else {
				l += " " + key + "=" + v
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// without returns passing without the lines whose name is name.
func without(name string) string {
	var out []string
	for _, l := range strings.Split(passing, "\n") {
		if !strings.HasPrefix(l, name+" ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestAllMet(t *testing.T) {
	out, met := summarize(t, passing)
	for r, m := range met {
		if m != "met" {
			t.Errorf("row %s: %q, want met", r, m)
		}
	}
	for _, want := range []string{
		"## Summary: the goals of issue 10, make bench (at abc1234, 2 cores, load average 0.80 at start, 2.10 at end, 301 s)",
		"| A: 10,000 subs / 100 tenants, 500 ev/s single POSTs ",
		"| every event delivered, p99 ≤ 20 ms                               | met | 500,100/500,100",
		"| B: 10,000 subs / 1 tenant, 500 ev/s single POSTs ",
		"| C: 1,000 subs / 1 tenant, 2,000 ev/s in 20-event POSTs ",
		"| D: 19,900 idle subs ",
		"| tl-post ingest (1,000,000 lines) ",
		"| tl-tail to /dev/null (1,000,000 200-byte lines) ",
		`| tl-fmt '.type=="click"' (1,000,000 lines) `,
		"500,100/500,100 delivered, 0 gaps, 0 lost; 49,889 deliv/s; p50/p95/p99/max 1.7/16.4/20.0/67.8 ms; relay 8.8 CPU-s, 184 MiB; gen 6.8 CPU-s\n",
		"495 posted/s, POST p99 10.0 ms (3.1 ms with no subscribers)",
		"p50/p95/p99/max 119/213/254/1,424 ms",
		"1,000,000 deliv per relay CPU-s",
		"319 MiB RSS, 8.0 KiB per idle subscriber",
		"1,639,344 lines/s, 1.0× jq (jq-1.6), 1.0× gojq (0.12.19)",
		"1,000,000 lines/s from history; live while tl-post publishes: 569,516",
		"| beacon: 1-event CORS POSTs (text/plain, Origin, ingest key), closed loop ",
		"| ≥ 10× A's 500 ev/s (5,000 ev/s), every POST 202 ",
		"5,000 events/s (10× A's rate); POST p99 4.6 ms; relay 3.7 CPU-s, 53 MiB; gen 3.8 CPU-s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "Quick mode") {
		t.Errorf("quick mode note in a full run:\n%s", out)
	}
	// The columns are aligned up to the last.
	var width int
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "|") {
			n := utf8.RuneCountInString(l[:strings.LastIndex(l, " | ")])
			if width == 0 {
				width = n
			} else if n != width {
				t.Errorf("last column at %d, want %d: %q", n, width, l)
			}
		}
	}
}

// TestMissed moves one figure just past its goal at a time: that row, and
// only that one, is missed, for the reason given.
func TestMissed(t *testing.T) {
	for _, c := range []struct {
		file, row, why string
	}{
		{with("fanout A", "p99_ms", "20.001"), "A:", "p99 20.001 ms > 20"},
		{with("fanout A", "delivered", "500099"), "A:", "500,099/500,100 delivered"},
		{with("fanout A", "expected", "0"), "A:", "500,100/0 delivered"},
		{with("fanout B", "posted_s", "494.9"), "B:", "accepted 494.9 ev/s of 500"},
		{with("fanout B", "post_errors", "3"), "B:", "3 POSTs failed"},
		{with("fanout B", "post_p99_ms", "10.000"), "B:", "POST p99 10 ms ≥ 10"},
		{with("fanout B", "deliv_s", "599999"), "B:", "599,999 deliv/s < 600,000"},
		{with("fanout B", "lost", "1"), "B:", "1 lost, 0 unaccounted"},
		{with("fanout B", "missing", "7"), "B:", "0 lost, 7 unaccounted"},
		{with("fanout C", "deliv_s", "999999"), "C:", "999,999 deliv/s < 1,000,000"},
		{with("fanout C", "deliv_per_cpu_s", "999999"), "C:", "999,999 per CPU-s < 1,000,000"},
		{with("fanout D", "per_sub_kib", "8.01"), "D:", "8.01 KiB > 8"},
		{with("fanout tls A", "p99_ms", "20.001"), "A/TLS:", "p99 20.001 ms > 20"},
		{with("fanout tls C", "deliv_s", "999999"), "C/TLS:", "999,999 deliv/s < 1,000,000"},
		{with("fanout pinned B", "post_p99_ms", "10.000"), "B/pinned:", "POST p99 10 ms ≥ 10"},
		{with("fanout pinned B", "posted_s", "494.9"), "B/pinned:", "accepted 494.9 ev/s of 500"},
		{with("fanout pinned B", "lost", "1"), "B/pinned:", "1 lost, 0 unaccounted"},
		{with("beacon", "posted_s", "4999.9"), "beacon:", "4999.9 ev/s < 5,000"},
		{with("beacon", "post_errors", "2"), "beacon:", "2 POSTs failed"},
		{with("post", "events_s", "299999"), "tl-post", "299,999 < 300,000"},
		{with("tail", "lines_s", "999999"), "tl-tail", "999,999 < 1,000,000"},
		{with("fmt", "jq_s", "0.610"), "tl-fmt", "1.00× jq"},
		{with("fmt", "gojq_s", "0.5"), "tl-fmt", "0.82× gojq"},
	} {
		_, met := summarize(t, c.file)
		for r, m := range met {
			switch {
			case r == c.row && !(strings.HasPrefix(m, "missed: ") && strings.Contains(m, c.why)):
				t.Errorf("%s: %q, want missed: ...%s...", r, m, c.why)
			case r != c.row && m != "met":
				t.Errorf("%s (when %s misses %s): %q, want met", r, c.row, c.why, m)
			}
		}
	}
}

func TestQuick(t *testing.T) {
	file := strings.ReplaceAll(passing, "quick=0", "quick=1")
	file = strings.ReplaceAll(file, "subs=10000", "subs=2000")
	file = strings.ReplaceAll(file, "p99_ms=20.000", "p99_ms=45.000") // A would miss
	file = strings.ReplaceAll(file, "events_s=300000", "events_s=200000")
	out, met := summarize(t, file)
	for _, r := range []string{"A:", "B:", "C:", "D:", "A/TLS:", "C/TLS:", "B/pinned:"} {
		if met[r] != naQuick {
			t.Errorf("%s: %q, want %q", r, met[r], naQuick)
		}
	}
	if !strings.HasPrefix(met["tl-post"], "missed") || met["tl-tail"] != "met" || met["tl-fmt"] != "met" || met["beacon:"] != "met" {
		t.Errorf("client rows %q %q %q, want missed met met", met["tl-post"], met["tl-tail"], met["tl-fmt"])
	}
	for _, want := range []string{"make bench-quick (", "Quick mode: these are not the goals' conditions", "| A: 2,000 subs / 100 tenants"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

func TestNoResult(t *testing.T) {
	file := without("fanout B") + "\nfailed script=scripts/bench-fanout.sh rc=1\n"
	file = strings.Replace(file, "fmt lines=1000000 runs=3 fast_s=0.610 gojq_path_s=2.800 jq_s=0.611 jq_version=jq-1.6 ",
		"fmt lines=1000000 runs=3 fast_s=0.610 gojq_path_s=2.800 ", 1) // jq not installed
	out, met := summarize(t, file)
	if met["B"] != noResult {
		t.Errorf("B: %q, want %q", met["B"], noResult)
	}
	if met["A:"] != "met" || met["C:"] != "met" {
		t.Errorf("A and C, without B: %q %q, want met", met["A:"], met["C:"])
	}
	if met["tl-fmt"] != "n/a: jq not installed" {
		t.Errorf("tl-fmt without jq: %q, want n/a: jq not installed", met["tl-fmt"])
	}
	if !strings.Contains(out, "jq not installed, 1.0× gojq") {
		t.Errorf("fmt figures without jq:\n%s", out)
	}
	if !strings.Contains(out, "scripts/bench-fanout.sh failed (exit 1)") {
		t.Errorf("no failed script in\n%s", out)
	}

	// A record given twice counts as its last line.
	_, met = summarize(t, passing+"post lines=1000000 runs=3 events_s=2\n")
	if !strings.HasPrefix(met["tl-post"], "missed") {
		t.Errorf("tl-post given twice, the last missing: %q, want missed", met["tl-post"])
	}
	_, met = summarize(t, "")
	for r, m := range met {
		if m != noResult {
			t.Errorf("empty file, %s: %q, want %q", r, m, noResult)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, f := range []string{"post a=1 b\n", "a=1\n"} {
		if _, err := parse(strings.NewReader(f)); err == nil {
			t.Errorf("%q: no error", f)
		}
	}
	if _, err := parse(strings.NewReader("\n  \npost a=1\n")); err != nil {
		t.Errorf("blank lines: %v", err)
	}
}

func TestCommas(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 49888.6: "49,889", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := commas(v); got != want {
			t.Errorf("commas(%v) = %q, want %q", v, got, want)
		}
	}
}
