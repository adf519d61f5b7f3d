package relaycmd

import (
	"fmt"
	"sort"
	"strings"
)

// diskTrouble is what /readyz says about tenants that a failed write or
// fsync stopped (empty when none): the first few by name, and how many.
func diskTrouble(failed map[string]string) string {
	if len(failed) == 0 {
		return ""
	}
	names := make([]string, 0, len(failed))
	for t := range failed {
		names = append(names, t)
	}
	sort.Strings(names)
	const shown = 3 // enough to start looking; the log names every one
	var b strings.Builder
	fmt.Fprintf(&b, "data directory: %d tenant(s) stopped by a failed write or fsync until restart:", len(names))
	for _, t := range names[:min(len(names), shown)] {
		fmt.Fprintf(&b, " %s (%s);", t, failed[t])
	}
	if len(names) > shown {
		fmt.Fprintf(&b, " and %d more", len(names)-shown)
	}
	return strings.TrimSuffix(b.String(), ";")
}
