// Command tl-fmt runs a jq program on each event of an NDJSON stream and
// writes the results for a terminal or a pipe. See lib/format.
package main

import (
	"os"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/format"
)

func main() { os.Exit(cli.Main("tl-fmt", format.Run)) }
