// Package format owns tl-fmt: it runs a jq program (gojq, embedded) on each
// NDJSON line and writes the results for a terminal or a pipe. A program
// whose result is a boolean acts as a predicate: the input line passes
// through byte for byte, so `tl-fmt '.type=="click"'` is a fast grep for
// events. Common filter shapes are answered straight from the bytes (fast.go)
// and lines are processed on every core with their order kept (pipeline.go).
// gojq and go-isatty are imported here and nowhere else in tl.
package format

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
)

// jq's exit statuses, which tl-fmt keeps.
const (
	exitFalsy    = 1 // -e: the last output was false or null
	exitCompile  = 3 // the program does not compile
	exitNoOutput = 4 // -e: there was no output at all
	exitRuntime  = 5 // an input raised an error, or was not JSON
	exitPipe     = 141
)

const usage = `usage: tl-fmt [flags] [FILTER] [FILE...]

Run the jq program FILTER (default ".") on each NDJSON line of the FILEs (or
stdin). A boolean result selects the line, which passes through unchanged;
any other result is printed. Named filters (tl-fmt --list) are jq functions:
tl-fmt clicks, tl-fmt 'errors | .path', tl-fmt 'top_paths(100)'.

flags:
`

// options are the parsed command line.
type options struct {
	filter    string
	files     []string
	fromFile  string
	libDirs   []string
	raw       bool
	compact   bool
	exitCode  bool
	nullInput bool
	slurp     bool
	output    string // line, json or pretty
	color     bool
	list      bool
	vars      []string // "$name", for gojq.WithVariables
	values    []any
	named     map[string]any
	jobs      int  // worker goroutines; 0 for one per CPU
	maxErrors int  // per-line messages printed before they are only counted; 0 for all
	noFast    bool // tests: always take the gojq path
}

// Run is tl-fmt's entry point.
func Run(ctx context.Context, args []string, env *cli.Env) error {
	o, err := parseArgs(args, env)
	if err != nil || o == nil {
		return err
	}
	if o.list {
		return listFilters(o, env)
	}
	prog, err := compile(o, env)
	if err != nil {
		return err
	}
	return run(ctx, o, prog, env)
}

// parseArgs parses the command line; it returns nil options when it has
// already done what was asked (--help, --version).
func parseArgs(args []string, env *cli.Env) (*options, error) {
	o := &options{named: map[string]any{}}
	// jq's --arg and --argjson take two values, which pflag cannot express:
	// take them out first.
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if a != "--arg" && a != "--argjson" {
			rest = append(rest, a)
			continue
		}
		if i+2 >= len(args) {
			return nil, cli.Usagef("%s takes two parameters (e.g. %s varname value)\ntry 'tl-fmt --help'", a, a)
		}
		name, val := args[i+1], args[i+2]
		i += 2
		var v any = val
		if a == "--argjson" {
			var err error
			if v, err = parseJSONValue(val); err != nil {
				return nil, cli.Usagef("--argjson %s: invalid JSON text %q\ntry 'tl-fmt --help'", name, val)
			}
		}
		o.vars = append(o.vars, "$"+name)
		o.values = append(o.values, v)
		o.named[name] = v
	}

	fs := pflag.NewFlagSet("tl-fmt", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.BoolVarP(&o.raw, "raw-output", "r", false, "write strings without quotes")
	fs.BoolVarP(&o.compact, "compact-output", "c", false, "compact JSON output (implies -o json)")
	fs.BoolVarP(&o.exitCode, "exit-status", "e", false, "exit 1 if the last output was false or null, 4 if there was none")
	fs.BoolVarP(&o.nullInput, "null-input", "n", false, "run the program once with null as input (read events with input/inputs)")
	fs.BoolVarP(&o.slurp, "slurp", "s", false, "read every event into one array and run the program once on it")
	fs.StringVarP(&o.fromFile, "from-file", "f", "", "read the program from `FILE`")
	fs.StringArrayVarP(&o.libDirs, "library-path", "L", nil, "search `DIR` for modules and named filters (*.jq)")
	fs.StringVarP(&o.output, "output", "o", "", "output mode: line, json or pretty (default line on a terminal, else json)")
	colorFlag := fs.String("color", "auto", "colour: auto, always or never")
	colorOn := fs.BoolP("color-output", "C", false, "colour even if stdout is not a terminal")
	colorOff := fs.BoolP("monochrome-output", "M", false, "no colour")
	fs.BoolVar(&o.list, "list", false, "list the named filters and exit")
	fs.IntVar(&o.jobs, "jobs", 0, "worker goroutines (default: one per CPU)")
	fs.IntVar(&o.maxErrors, "max-errors", defaultMaxErrors, "report at most `N` bad lines one by one, then only count them (0: no limit)")
	help := fs.BoolP("help", "h", false, "show this help")
	version := fs.Bool("version", false, "print the version")
	if err := fs.Parse(rest); err != nil {
		return nil, cli.Usagef("%v\ntry 'tl-fmt --help'", err)
	}
	if *help {
		fmt.Fprint(env.Stdout, usage+fs.FlagUsages()+helpTail)
		return nil, nil
	}
	if *version {
		fmt.Fprintln(env.Stdout, cli.VersionLine("tl-fmt"))
		return nil, nil
	}
	pos := fs.Args()
	if o.fromFile != "" {
		src, err := os.ReadFile(o.fromFile)
		if err != nil {
			return nil, cli.Exit(cli.ExitUsage, fmt.Errorf("reading program: %w", err))
		}
		o.filter = string(src)
	} else if len(pos) > 0 {
		o.filter, pos = pos[0], pos[1:]
	} else {
		o.filter = "."
	}
	o.files = pos

	switch {
	case *colorOn && *colorOff:
		return nil, cli.Usagef("-C and -M cannot be used together\ntry 'tl-fmt --help'")
	case *colorOn:
		*colorFlag = "always"
	case *colorOff:
		*colorFlag = "never"
	}
	tty := isTerminal(env.Stdout)
	on, err := colorWanted(*colorFlag, env.Getenv, tty)
	if err != nil {
		return nil, err
	}
	o.color = on
	switch {
	case o.output == "" && o.compact:
		o.output = "json"
	case o.output == "" && tty:
		o.output = "line"
	case o.output == "":
		o.output = "json"
	case o.output != "line" && o.output != "json" && o.output != "pretty":
		return nil, cli.Usagef("-o %s: must be line, json or pretty\ntry 'tl-fmt --help'", o.output)
	}
	if o.maxErrors < 0 {
		return nil, cli.Usagef("--max-errors must be at least 0\ntry 'tl-fmt --help'")
	}
	if o.jobs < 0 {
		return nil, cli.Usagef("--jobs must be at least 0\ntry 'tl-fmt --help'")
	}
	return o, nil
}

const helpTail = `      --arg NAME VALUE          set $NAME to the string VALUE
      --argjson NAME TEXT       set $NAME to the JSON TEXT

Named filters are jq functions shipped in the binary; tl-fmt --list shows
them. Add your own as NAME.jq files defining "def NAME: ...;" in
$XDG_CONFIG_HOME/tl/filters (default ~/.config/tl/filters) or a -L directory.

Exit status: 0 ok, 1 with -e when the last output was false or null, 2 usage
or an unreadable file, 3 the program does not compile, 4 with -e when there
was no output, 5 a line was not JSON or raised an error (every other line is
still processed).
`

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fd := f.Fd()
	return isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)
}

// quietPipe turns a write to a closed pipe into a quiet exit, as `| head`
// expects.
func quietPipe(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		return cli.Exit(exitPipe, nil)
	}
	return err
}

// displayName is how messages name an input.
func displayName(name string) string {
	if name == "" {
		return "<stdin>"
	}
	return name
}
