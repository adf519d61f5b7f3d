package post

import (
	"testing"

	"github.com/tl-sh/tl/lib/event"
)

// FuzzCheck: whatever the line, check does not panic, and what it accepts
// the relay accepts too, for the tenant check chose (so a rewritten line is
// still a valid event).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"type":"click","path":"/a"}`,
		`{"tenant_id":"acme","timestamp":1795824000000,"type":"pageview","path":"/","metadata":{"k":"v"}}`,
		`{"seq":41,"tenant_id":"acme","timestamp":1795824000000,"type":"click","path":"/a\u00e9","metadata":{}}`,
		`{"seq":1,"tenant_id":"x y","type":"custom","path":"/"}`,
		` {"type":"click","path":"/a"} ` + "\r",
		`{"tenant_id":"globex","type":"click","path":"/a"}`,
		`hello`,
		``,
	} {
		f.Add(s, "")
		f.Add(s, "staging")
	}
	f.Fuzz(func(t *testing.T, line, tenant string) {
		if tenant != "" && event.CheckTenant(tenant) != nil {
			return
		}
		for _, retarget := range []bool{false, true} {
			if retarget && tenant == "" {
				continue
			}
			c := &checker{tenant: tenant, retarget: retarget}
			got, wire, _, err := c.check([]byte(line))
			if err != nil {
				continue
			}
			if tenant != "" && got != tenant {
				t.Fatalf("check(%q) with TENANT %q chose %q", line, tenant, got)
			}
			var v event.Validator
			if err := v.Validate(wire, got); err != nil {
				t.Fatalf("check(%q, %q) sends %q, which the relay refuses: %v", line, tenant, wire, err)
			}
		}
	})
}
