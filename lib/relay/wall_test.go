package relay

import (
	"go/build"
	"strings"
	"testing"
)

// commandOnly are the packages that belong to the tl-relay command
// (lib/relaycmd), not to the relay: flags, the command environment and
// the backings it chooses between.
var commandOnly = []string{
	"github.com/spf13/pflag",
	"github.com/tl-sh/tl/lib/cli",
	"github.com/tl-sh/tl/lib/redislog",
	"github.com/tl-sh/tl/lib/disklog",
}

// TestWall: the relay imports none of commandOnly.
func TestWall(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		for _, bad := range commandOnly {
			if imp == bad || strings.HasPrefix(imp, bad+"/") {
				t.Errorf("lib/relay imports %s, which belongs to the command (lib/relaycmd)", imp)
			}
		}
	}
}
