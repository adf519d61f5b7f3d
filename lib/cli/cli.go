// Package cli owns what the four tl commands share at their edges: the
// environment a command runs in (its streams and variables), exit codes,
// signal handling and the version line. Commands take an *Env instead of
// touching os.Stdout or os.Getenv, so tests can run them with buffers.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Conventional exit statuses shared by the commands.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitInterrupted = 130 // 128 + SIGINT
	ExitTerminated  = 143 // 128 + SIGTERM
)

// Env is the world a command runs in.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// OSEnv returns the process's real environment.
func OSEnv() *Env {
	return &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// RunFunc is a command's entry point. It returns nil on success, or an error
// that may carry an exit code (see ExitError).
type RunFunc func(ctx context.Context, args []string, env *Env) error

// ExitError carries an exit status. Err may be nil for a status that needs
// no message (for example tl-fmt -e with a false last value).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Exit wraps err with an exit code.
func Exit(code int, err error) error { return &ExitError{Code: code, Err: err} }

// Usagef returns a usage error (exit status 2).
func Usagef(format string, a ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, a...)}
}

// Silent is a failure whose message has already been printed.
//
//lint:ignore ST1012 an outcome Main maps to an exit status, not an error to match; the name reads at call sites
var Silent = errors.New("")

// Interrupted reports that the command stopped because of a signal; Main
// turns it into 130 or 143.
//
//lint:ignore ST1012 an outcome Main maps to an exit status, not an error to match; the name reads at call sites
var Interrupted = errors.New("interrupted")

// Code maps an error returned by a RunFunc to an exit status, and the message
// to print (empty for none).
func Code(err error) (int, string) {
	if err == nil {
		return ExitOK, ""
	}
	code := ExitFailure
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			return code, ""
		}
	}
	if errors.Is(err, Silent) {
		return code, ""
	}
	return code, err.Error()
}

// Main runs a command as a process: it wires the real streams, turns SIGINT
// and SIGTERM into a cancelled context, prints the error once as "name: msg",
// and returns the exit status for os.Exit. After a signal the status is 130
// (SIGINT) or 143 (SIGTERM) unless the command already failed otherwise.
func Main(name string, run RunFunc) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	got := make(chan os.Signal, 1)
	go func() {
		select {
		case s := <-sigs:
			got <- s
			cancel()
		case <-ctx.Done():
		}
	}()

	err := run(ctx, os.Args[1:], OSEnv())
	cancel()

	var sig os.Signal
	select {
	case sig = <-got:
	default:
	}
	code, msg := Code(err)
	if sig != nil && (err == nil || errors.Is(err, Interrupted) || errors.Is(err, context.Canceled)) {
		msg = ""
		code = ExitInterrupted
		if sig == syscall.SIGTERM {
			code = ExitTerminated
		}
	}
	if msg != "" {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, msg)
	}
	return code
}
