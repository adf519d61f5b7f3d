package event

import (
	"crypto/rand"
	"encoding/hex"
)

// NewEpoch returns a fresh random epoch name, 16 hex digits: every backing
// (memory, data directory, Redis) names a new numbering of a tenant's
// history with one (the hello's and gap's "epoch").
func NewEpoch() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}
