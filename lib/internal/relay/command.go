package relay

import (
	"log/slog"
	"net/http"
)

// What a command running the relay (lib/relaycmd) needs from it besides
// Config: the sizes it checks its flags against, and the admin server.

// MemoryBudgetShare is the share of the machine's (or cgroup's) memory
// that DefaultMemoryBudget takes: 1/MemoryBudgetShare.
const MemoryBudgetShare = budgetDivisor

// MinMemoryBudget is the smallest Config.Budget for bodies of maxBody: one
// batch of the worst kind must fit, or it would be evicted as soon as
// accepted.
func MinMemoryBudget(maxBody int64) int64 { return minMemoryBudget(maxBody) }

// BatchMemory is the most one accepted body of maxBody bytes can hold in
// memory once stored.
func BatchMemory(maxBody int64) int64 { return batchMemory(maxBody) }

// BodyCost is what a body of n bytes holds in memory while it is read and
// validated, as Config.MaxInflightBytes counts it.
func BodyCost(n int64) int64 { return bodyCost(n) }

// DefaultTenantInflight is Config.MaxTenantInflightBytes when it is not
// given, for a relay-wide total and bodies of maxBody.
func DefaultTenantInflight(total, maxBody int64) int64 { return defaultTenantInflight(total, maxBody) }

// AdminServer returns an http.Server for AdminHandler with the main
// listener's limits: the admin port is no less exposed to slow or
// oversized headers (slowloris, 431).
func (s *Server) AdminServer() *http.Server {
	return &http.Server{
		Handler:           s.AdminHandler(),
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}
