package relay

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// commandOnly are the packages that belong to the tl-relay command
// (lib/relaycmd), not to the relay: flags, the command environment and
// the backings it chooses between.
var commandOnly = []string{
	"github.com/spf13/pflag",
	"github.com/tl-sh/tl/lib/cli",
	"github.com/tl-sh/tl/lib/internal/redislog",
	"github.com/tl-sh/tl/lib/internal/disklog",
}

// TestWall: the relay imports none of commandOnly, and neither do the
// packages it imports, all the way down (non-test imports): the backings
// (lib/internal/disklog, lib/internal/redislog) import lib/internal/tlog,
// never the other way round.
func TestWall(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if slices.Contains(commandOnly, imp) {
			t.Errorf("lib/internal/relay imports %s, which belongs to the command (lib/relaycmd)", imp)
		}
	}
	// The module's packages below lib/internal/relay, and who imports each first.
	const module = "github.com/tl-sh/tl/"
	via := map[string]string{}
	queue := []string{}
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, module) {
			via[imp] = "lib/internal/relay"
			queue = append(queue, imp)
		}
	}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		p, err := build.Import(path, ".", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range p.Imports {
			if slices.Contains(commandOnly, imp) {
				t.Errorf("lib/internal/relay imports %s through %s (imported by %s)", imp, path, via[path])
			}
			if _, seen := via[imp]; !seen && strings.HasPrefix(imp, module) {
				via[imp] = path
				queue = append(queue, imp)
			}
		}
	}
}
