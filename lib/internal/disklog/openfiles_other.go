//go:build !unix

package disklog

// defaultOpenFiles: without RLIMIT_NOFILE (Windows handles have no such
// small per-process limit), a modest cache.
func defaultOpenFiles() int { return minOpenFiles * 32 }
