package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped by the Makefile with -ldflags "-X github.com/tl-sh/tl/lib/cli.version=... -X ...commit=...".
var (
	version = ""
	commit  = ""
)

// Version returns the version and commit this binary was built from: the
// stamped values when built by make, else what `go install` recorded.
func Version() (ver, rev string) {
	ver, rev = version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if ver == "" && info.Main.Version != "" {
			ver = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if ver == "" {
		ver = "devel"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

// VersionLine is what every command prints for --version.
func VersionLine(name string) string {
	ver, rev := Version()
	return fmt.Sprintf("%s %s (commit %s, %s)", name, ver, rev, runtime.Version())
}
