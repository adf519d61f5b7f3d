package metrics

import (
	"net/http"
	"net/http/pprof"
)

// AdminHandler serves what --admin-listen exposes on its own address: the
// metrics at /metrics and the Go profiler under /debug/pprof/. It is meant
// for a loopback or otherwise private address, so it asks for no token.
//
// The pprof handlers are registered on a mux of our own: importing
// net/http/pprof also adds them to http.DefaultServeMux, which the relay
// never serves.
func (m *Metrics) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // also serves heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/debug/pprof/", http.StatusFound)
	})
	return mux
}
