package relay

import "net/http"

// outcomeUnknown is the 504 for a batch that a shared broker was sent and
// did not answer for: it may be published (now, or when a hung broker
// wakes up). A 503 always means "not published"; this one means "retry
// with the same Idempotency-Key to learn which" (the retry then answers
// the first 202, or publishes the batch once).
func outcomeUnknown(tenant string, keyed bool, err error) *HTTPError {
	hint := "retry with the same Idempotency-Key: it publishes the batch at most once"
	if !keyed {
		hint = "without an Idempotency-Key a retry may publish it twice"
	}
	e := httpErrorf(http.StatusGatewayTimeout, "tenant %s: the broker did not answer (%v): the batch may or may not be published; %s", tenant, err, hint)
	e.Header = http.Header{"Retry-After": {retryAfter}}
	return e
}
