//go:build !unix

package relay

import "errors"

// No raw descriptor I/O here (Windows' pipes are not polled by the
// netpoller): the pacer yields with runtime.Gosched (pace.go).
const rawPipeIO = false

var errNoRawIO = errors.New("no raw descriptor I/O on this system")

func rawRead(uintptr, []byte) (int, error)  { return 0, errNoRawIO }
func rawWrite(uintptr, []byte) (int, error) { return 0, errNoRawIO }
