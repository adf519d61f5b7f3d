//go:build unix

package disklog

import "syscall"

// defaultOpenFiles sizes the cache from the process's descriptor limit.
func defaultOpenFiles() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur <= 0 {
		return minOpenFiles * 32 // no limit to go by: a modest cache
	}
	return int(min(max(rl.Cur/openFilesShare, minOpenFiles), maxOpenFiles))
}
