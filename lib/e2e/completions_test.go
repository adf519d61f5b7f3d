package e2e

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// TestCompletionsUpToDate: completions/ is what scripts/completions makes
// from the commands' --help now, so every flag completes and no stale one.
func TestCompletionsUpToDate(t *testing.T) {
	cmd := exec.Command("go", "run", "./scripts/completions", "-bin", binDir, "-out", "completions", "-check")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestCompletionsBash: the script parses, and completes flags and their
// values as a user's Tab would.
func TestCompletionsBash(t *testing.T) {
	bash := testkit.NeedTool(t, "bash")
	script := filepath.Join(repoRoot(t), "completions", "tl.bash")
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n %s: %v\n%s", script, err, out)
	}
	for _, tt := range []struct {
		words, want string
	}{
		{"tl-tail --la", "--last"},
		{"tl-post --replay-m", "--replay-max-gap"},
		{"tl-post --progress p", "plain"},
		{"tl-fmt -o pr", "pretty"},
		{"tl-relay --log-level w", "warn"},
		{"tl-fmt --max-e", "--max-errors"},
	} {
		words := strings.Fields(tt.words)
		prog := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); ` +
			`_` + strings.ReplaceAll(words[0], "-", "_") + `; printf '%s\n' "${COMPREPLY[@]}"`
		out, err := exec.Command(bash, append([]string{"-c", prog, "bash", script}, words...)...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("%q<Tab>: %q, %v; want %q", tt.words, out, err, tt.want)
		}
	}
}

// TestCompletionsZsh: the script parses (zsh -n); .ci/run installs zsh.
func TestCompletionsZsh(t *testing.T) {
	zsh := testkit.NeedTool(t, "zsh")
	script := filepath.Join(repoRoot(t), "completions", "_tl")
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n %s: %v\n%s", script, err, out)
	}
}

// TestCompletionsFish: each script parses, and fish's own completer uses
// it (complete -C); .ci/run installs fish.
func TestCompletionsFish(t *testing.T) {
	fish := testkit.NeedTool(t, "fish")
	for _, c := range commands {
		script := filepath.Join(repoRoot(t), "completions", c+".fish")
		if out, err := exec.Command(fish, "-n", script).CombinedOutput(); err != nil {
			t.Fatalf("fish -n %s: %v\n%s", script, err, out)
		}
	}
	for _, tt := range []struct{ line, want string }{
		{"tl-tail --la", "--last\t"},
		{"tl-post --progress=p", "--progress=plain"},
		{"tl-fmt --max-e", "--max-errors\t"},
	} {
		c := strings.Fields(tt.line)[0]
		script := filepath.Join(repoRoot(t), "completions", c+".fish")
		out, err := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", script, tt.line).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), tt.want) {
			t.Errorf("%q<Tab>: %q, %v; want %q...", tt.line, out, err, tt.want)
		}
	}
}

// tenantRelay starts a relay holding the tenants acme, acme-eu and globex
// and returns the environment a shell completes in: tl-tail on PATH,
// TL_RELAY set.
func tenantRelay(t *testing.T) []string {
	t.Helper()
	p := secStartRelay(t)
	for _, tenant := range []string{"acme", "acme-eu", "globex"} {
		body := []byte(`{"tenant_id":"` + tenant + `","type":"click","path":"/a"}` + "\n")
		if _, ok := publish(http.DefaultClient, p.url, tenant, body); !ok {
			t.Fatalf("publishing to %s failed", tenant)
		}
	}
	return completionEnv(p.url)
}

// completionEnv is a shell's environment with tl-tail on PATH and relay as
// TL_RELAY.
func completionEnv(relay string) []string {
	return []string{"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TL_RELAY=" + relay}
}

// noRelay is a TL_RELAY where nothing listens: port 1 of loopback refuses.
const noRelay = "http://127.0.0.1:1"

// bashComplete runs the bash completion function of words' command as a
// Tab after the last word would, and returns stdout (the candidates, one a
// line) and stderr.
func bashComplete(t *testing.T, env []string, line string) (string, string) {
	t.Helper()
	bash := testkit.NeedTool(t, "bash")
	script := filepath.Join(repoRoot(t), "completions", "tl.bash")
	words := strings.Fields(line)
	if strings.HasSuffix(line, " ") {
		words = append(words, "")
	}
	prog := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); ` +
		`_` + strings.ReplaceAll(words[0], "-", "_") + `; printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command(bash, append([]string{"-c", prog, "bash", script}, words...)...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%q<Tab>: %v\n%s", line, err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// sortedLines is the non-empty lines of s, sorted.
func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// TestCompletionsBashTenants: tenant names come from the relay (tl-tail
// --list) for tl-tail's TENANTs and tl-post's TENANT and --tenant; with no
// relay, nothing, and not a word on the terminal.
func TestCompletionsBashTenants(t *testing.T) {
	env := tenantRelay(t)
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"tl-tail ac", []string{"acme", "acme-eu"}},
		{"tl-tail acme-", []string{"acme-eu"}},
		{"tl-tail -n 5 acme gl", []string{"globex"}},
		{"tl-tail ", []string{"acme", "acme-eu", "globex"}},
		{"tl-tail zz", nil},
		{"tl-post --tenant g", []string{"globex"}},
		{"tl-post -t ac", []string{"acme", "acme-eu"}},
		{"tl-post --progress plain gl", []string{"globex"}},
		{"tl-post acme gl", nil},    // past TENANT come FILEs (none in the empty directory)
		{"tl-post -t acme gl", nil}, // with --tenant every argument is a FILE
	} {
		out, stderr := bashComplete(t, env, tt.line)
		if got := sortedLines(out); !slices.Equal(got, tt.want) || stderr != "" {
			t.Errorf("%q<Tab>: %q, stderr %q; want %q", tt.line, got, stderr, tt.want)
		}
	}
	for _, line := range []string{"tl-tail ac", "tl-post -t ac", "tl-post ac"} {
		out, stderr := bashComplete(t, completionEnv(noRelay), line)
		if out != "\n" && out != "" || stderr != "" {
			t.Errorf("no relay: %q<Tab>: %q, stderr %q; want nothing", line, out, stderr)
		}
	}
	// A relay address that takes the connection and never answers: the
	// listing's --timeout ends it, and Tab offers nothing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, stderr := bashComplete(t, completionEnv("http://"+ln.Addr().String()), "tl-tail ac")
	if out != "\n" && out != "" || stderr != "" {
		t.Errorf("silent relay: tl-tail ac<Tab>: %q, stderr %q; want nothing", out, stderr)
	}
}

// TestCompletionsFishTenants: the same through fish's own completer.
func TestCompletionsFishTenants(t *testing.T) {
	fish := testkit.NeedTool(t, "fish")
	run := func(env []string, line string) (string, string) {
		c := strings.Fields(line)[0]
		script := filepath.Join(repoRoot(t), "completions", c+".fish")
		cmd := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", script, line)
		cmd.Env = env
		cmd.Dir = t.TempDir()
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%q<Tab>: %v\n%s", line, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	env := tenantRelay(t)
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"tl-tail ac", []string{"acme", "acme-eu"}},
		{"tl-tail acme gl", []string{"globex"}},
		{"tl-post --tenant g", []string{"globex"}},
		{"tl-post ac", []string{"acme", "acme-eu"}},
		{"tl-post -t acme gl", nil},
	} {
		out, stderr := run(env, tt.line)
		var names []string
		for _, l := range sortedLines(out) {
			names = append(names, strings.Split(l, "\t")[0]) // fish adds "\tdescription"
		}
		if got := names; !slices.Equal(got, tt.want) || stderr != "" {
			t.Errorf("%q<Tab>: %q, stderr %q; want %q", tt.line, got, stderr, tt.want)
		}
	}
	out, stderr := run(completionEnv(noRelay), "tl-tail ac")
	if out != "" || stderr != "" {
		t.Errorf("no relay: tl-tail ac<Tab>: %q, stderr %q; want nothing", out, stderr)
	}
}

// TestCompletionsZshTenants: zsh's tenant lister, run with the word being
// completed in $PREFIX as the completion system sets it. _describe, which
// only exists inside a completion widget, is replaced by a stub printing
// the candidates, so _arguments' wiring to it is not driven here (zsh -n
// checks the file parses).
func TestCompletionsZshTenants(t *testing.T) {
	zsh := testkit.NeedTool(t, "zsh")
	script := filepath.Join(repoRoot(t), "completions", "_tl")
	run := func(env []string, prefix string) (string, string) {
		prog := `source $1; _describe() { print -rl -- ${(P)${@[-1]}} }; PREFIX=$2; _tl_tenants`
		cmd := exec.Command(zsh, "-f", "-c", prog, "zsh", script, prefix)
		cmd.Env = env
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("PREFIX=%s: %v\n%s", prefix, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	env := tenantRelay(t)
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"ac", []string{"acme", "acme-eu"}},
		{"g", []string{"globex"}},
		{"", []string{"acme", "acme-eu", "globex"}},
		{"zz", nil},
	} {
		out, stderr := run(env, tt.prefix)
		if got := sortedLines(out); !slices.Equal(got, tt.want) || stderr != "" {
			t.Errorf("PREFIX=%q: %q, stderr %q; want %q", tt.prefix, got, stderr, tt.want)
		}
	}
	if out, stderr := run(completionEnv(noRelay), "ac"); strings.TrimSpace(out) != "" || stderr != "" {
		t.Errorf("no relay: %q, stderr %q; want nothing", out, stderr)
	}
}
