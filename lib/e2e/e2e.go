// Package e2e holds the end-to-end script tests: the real tl binaries, built
// once per test run, driven by testscript files under testdata/script over
// real pipes and loopback sockets. See e2e_test.go for the extra commands the
// scripts may use (relay-start, relay-stop, relay-kill, ...).
package e2e
