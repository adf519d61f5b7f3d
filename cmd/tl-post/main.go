// Command tl-post publishes NDJSON events to a tl relay; see lib/post and
// tl-post(1).
package main

import (
	"os"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/post"
)

func main() { os.Exit(cli.Main("tl-post", post.Run)) }
