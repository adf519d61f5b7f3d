// Command tl-tail streams a tenant's events from the relay to stdout.
// See lib/tail and man/tl-tail.1.
package main

import (
	"os"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/tail"
)

func main() { os.Exit(cli.Main("tl-tail", tail.Run)) }
