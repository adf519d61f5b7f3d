package e2e

import (
	"os/exec"
	"path/filepath"
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
