// Command tl-relay is the tl relay: per-tenant event ingestion and live
// fan-out over WebSocket and chunked NDJSON. See lib/relaycmd (the
// command) and lib/internal/relay (the relay).
package main

import (
	"os"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/relaycmd"
)

func main() { os.Exit(cli.Main("tl-relay", relaycmd.Run)) }
