package relay

import (
	"errors"

	"github.com/tl-sh/tl/lib/wsframe"
)

// clientFrames parses what a WebSocket client sends to a subscriber served
// by a hub: control frames, which the poller hands on, and data messages,
// which it discards (a subscriber has nothing to say; gorilla's reader in
// the goroutine path ignores them the same way). The codec is wsframe's;
// attach sets its Limit to wsReadLimit.
type clientFrames = wsframe.Parser

// errPeerGone is a subscriber's connection closed or broken by the client.
var errPeerGone = errors.New("connection closed by the client")
