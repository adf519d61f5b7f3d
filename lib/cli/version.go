package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped by the Makefile with -ldflags "-X github.com/tl-sh/tl/lib/cli.version=... -X ...commit=...".
var (
	version = ""
	commit  = ""
)

// Version returns the version and commit this binary was built from: the
// stamped values when built by make, else what `go install` recorded.
func Version() (ver, rev string) {
	info, _ := debug.ReadBuildInfo()
	return versionOf(version, commit, info)
}

// versionOf decides Version from the stamped values and the build info.
func versionOf(stampedVer, stampedRev string, info *debug.BuildInfo) (ver, rev string) {
	ver, rev = stampedVer, stampedRev
	if info != nil {
		if ver == "" && info.Main.Version != "" {
			ver = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if ver == "" || rev != "" && strings.HasPrefix(ver, strings.TrimSuffix(rev, "-dirty")) {
		// An untagged build stamped with its hash as version (git describe
		// --always) would print the hash twice.
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
