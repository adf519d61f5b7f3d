package tlog

import "errors"

// ErrOutcomeUnknown marks an append that may or may not have happened: a
// shared backing sent the batch and no answer came (its broker hung or the
// connection broke). The relay must not say "not published": a retry with
// the same Idempotency-Key settles it, exactly once.
var ErrOutcomeUnknown = errors.New("outcome unknown")
