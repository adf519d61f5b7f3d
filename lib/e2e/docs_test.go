package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tl-sh/tl/lib/internal/testkit"
)

// commands are the four binaries; each has a page in man/.
var commands = []string{"tl-relay", "tl-tail", "tl-post", "tl-fmt"}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestManPagesLint renders every page with mandoc's linter, as a user
// would run it (mandoc -Tlint, style messages included): no message at all.
func TestManPagesLint(t *testing.T) {
	mandoc := testkit.NeedTool(t, "mandoc")
	pages, _ := filepath.Glob(filepath.Join(repoRoot(t), "man", "*.[17]"))
	want := len(commands) + 2 // plus tl.7 and tl-protocol.7
	if len(pages) != want {
		t.Fatalf("found %d man pages %v, want %d (one per command plus tl.7 and tl-protocol.7)", len(pages), pages, want)
	}
	for _, p := range pages {
		out, err := exec.Command(mandoc, "-T", "lint", p).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("mandoc -T lint %s: %v\n%s", filepath.Base(p), err, out)
		}
	}
}

var (
	// helpFlag matches a flag's own line in pflag's usage: "  -c, --count N".
	helpFlag = regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?(--[a-z][a-z0-9-]*)`)
	// manFlag matches a long flag in roff, where a hyphen is written \-.
	manFlag = regexp.MustCompile(`\\-\\-([a-z][a-z0-9]*(?:(?:\\-|-)[a-z0-9]+)*)`)
)

// optionsSection returns the OPTIONS section of a man page: flags named in
// examples elsewhere (curl's, say) are not the command's own.
func optionsSection(page string) string {
	_, rest, ok := strings.Cut(page, "\n.SH OPTIONS\n")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "\n.SH "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// TestManPagesMatchHelp checks that every long flag in a command's --help
// appears in its man page, and the other way round.
func TestManPagesMatchHelp(t *testing.T) {
	for _, name := range commands {
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(filepath.Join(binDir, name), "--help").Output()
			if err != nil {
				t.Fatalf("%s --help: %v", name, err)
			}
			help := map[string]bool{}
			for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
				help[m[1]] = true
			}
			page, err := os.ReadFile(filepath.Join(repoRoot(t), "man", name+".1"))
			if err != nil {
				t.Fatal(err)
			}
			man := map[string]bool{}
			opts := optionsSection(string(page))
			if opts == "" {
				t.Fatalf("man/%s.1 has no OPTIONS section", name)
			}
			for _, m := range manFlag.FindAllStringSubmatch(opts, -1) {
				man["--"+strings.ReplaceAll(m[1], `\-`, "-")] = true
			}
			if len(help) < 2 {
				t.Fatalf("%s --help lists %d long flags; want at least --help and --version:\n%s", name, len(help), out)
			}
			var onlyHelp, onlyMan []string
			for f := range help {
				if !man[f] {
					onlyHelp = append(onlyHelp, f)
				}
			}
			for f := range man {
				if !help[f] {
					onlyMan = append(onlyMan, f)
				}
			}
			slices.Sort(onlyHelp)
			slices.Sort(onlyMan)
			if len(onlyHelp) > 0 {
				t.Errorf("flags in %s --help but not in man/%s.1: %s", name, name, strings.Join(onlyHelp, " "))
			}
			if len(onlyMan) > 0 {
				t.Errorf("flags in man/%s.1 but not in %s --help: %s", name, name, strings.Join(onlyMan, " "))
			}
		})
	}
}

// TestVersion checks every command's --version line: name, version, commit,
// Go version, on stdout, exit 0.
func TestVersion(t *testing.T) {
	line := regexp.MustCompile(`^(tl-[a-z]+) \S+ \(commit \S+, go1\.[0-9.]+\S*\)\n$`)
	for _, name := range commands {
		out, err := exec.Command(filepath.Join(binDir, name), "--version").Output()
		if err != nil {
			t.Errorf("%s --version: %v", name, err)
			continue
		}
		m := line.FindStringSubmatch(string(out))
		if m == nil || m[1] != name {
			t.Errorf("%s --version = %q, want %q", name, out, line)
		}
	}
}

// TestInstall installs into a temporary DESTDIR with make, checks the files,
// and uninstalls them again. It builds into a temporary BUILDDIR: the
// user's ./bin is not touched by make test.
func TestInstall(t *testing.T) {
	testkit.NeedTool(t, "make")
	dest, build := t.TempDir(), t.TempDir()
	binBefore := binStamp(t)
	make := func(target string) {
		t.Helper()
		cmd := exec.Command("make", target, "DESTDIR="+dest, "PREFIX=/opt/tl", "VERSION=v9.9.9-test", "BUILDDIR="+build)
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}
	make("install")
	var want []string
	for _, c := range commands {
		want = append(want, "bin/"+c, "share/man/man1/"+c+".1")
	}
	want = append(want, "share/man/man7/tl.7", "share/man/man7/tl-protocol.7", "share/zsh/site-functions/_tl")
	for _, c := range commands {
		want = append(want, "share/bash-completion/completions/"+c, "share/fish/vendor_completions.d/"+c+".fish")
	}
	for _, f := range want {
		p := filepath.Join(dest, "opt/tl", f)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("after make install: %v", err)
			continue
		}
		if strings.HasPrefix(f, "bin/") && fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", p)
		}
	}
	out, err := exec.Command(filepath.Join(dest, "opt/tl/bin/tl-tail"), "--version").Output()
	if err != nil || !strings.Contains(string(out), "v9.9.9-test") {
		t.Errorf("installed tl-tail --version = %q, %v; want the stamped version v9.9.9-test", out, err)
	}
	make("uninstall")
	for _, f := range want {
		if _, err := os.Stat(filepath.Join(dest, "opt/tl", f)); err == nil {
			t.Errorf("make uninstall left %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(build, "tl-tail")); err != nil {
		t.Errorf("make install did not build into BUILDDIR: %v", err)
	}
	if after := binStamp(t); after != binBefore {
		t.Errorf("make install changed the repository's bin/: %s, then %s", binBefore, after)
	}
}

// binStamp describes the repository's bin/ directory (what the user built
// there), so that a test can tell it was left alone.
func binStamp(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, c := range commands {
		fi, err := os.Stat(filepath.Join(repoRoot(t), "bin", c))
		if err != nil {
			fmt.Fprintf(&b, "%s: none; ", c)
			continue
		}
		fmt.Fprintf(&b, "%s: %d bytes %v; ", c, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// TestGoInstall checks that `go install` builds every command from a clean
// module (nothing to generate first) and that --version then reports what
// the build recorded.
func TestGoInstall(t *testing.T) {
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", "./cmd/...")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install ./cmd/...: %v\n%s", err, out)
	}
	for _, name := range commands {
		out, err := exec.Command(filepath.Join(gobin, name), "--version").Output()
		if err != nil {
			t.Errorf("%s --version after go install: %v", name, err)
			continue
		}
		if !strings.HasPrefix(string(out), name+" ") || !strings.Contains(string(out), "go1.") {
			t.Errorf("%s --version after go install = %q", name, out)
		}
	}
}
