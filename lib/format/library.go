package format

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/itchyny/gojq"

	"github.com/tl-sh/tl/lib/cli"
)

// The named filters are jq functions: each filters/NAME.jq defines NAME
// (and maybe NAME with parameters), and its first comment line describes it.
// Their definitions are added in front of every program, so a name works
// alone (tl-fmt clicks) and inside a program (tl-fmt 'errors | .path').
// Files whose name starts with "_" hold helpers and are not listed. Users add
// their own files in the config directory or a -L directory; a later
// definition of a name hides an earlier one, and the program's own hide all.
//
//go:embed filters/*.jq
var embedded embed.FS

// libFile is one filter file.
type libFile struct {
	name, path, desc string // path is "" for an embedded file
	src              string
	config           bool   // from the config directory: a broken one is skipped, not fatal
	usage            string // its public definitions, "top_paths, top_paths($n)"
}

// configFilterDir is where a user's own named filters live.
func configFilterDir(getenv func(string) string) string {
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "tl", "filters")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "tl", "filters")
	}
	return ""
}

// loadLibrary returns the filter files in the order their definitions
// apply: embedded, then the config directory, then each -L directory.
func loadLibrary(o *options, getenv func(string) string, stderr io.Writer) ([]libFile, error) {
	var files []libFile
	names, _ := fs.Glob(embedded, "filters/*.jq")
	slices.Sort(names)
	for _, n := range names {
		b, err := embedded.ReadFile(n)
		if err != nil {
			return nil, err
		}
		files = append(files, newLibFile(n, "", string(b)))
	}
	dirs := o.libDirs
	if d := configFilterDir(getenv); d != "" {
		dirs = append([]string{d}, dirs...)
	}
	configDirs := len(dirs) - len(o.libDirs)
	for i, d := range dirs {
		names, _ := filepath.Glob(filepath.Join(d, "*.jq"))
		if len(names) == 0 && i >= len(dirs)-len(o.libDirs) {
			if _, err := os.Stat(d); err != nil {
				return nil, cli.Usagef("-L %s: %v", d, err)
			}
		}
		slices.Sort(names)
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil && i < configDirs {
				fmt.Fprintf(stderr, "tl-fmt: skipping filter file %s: %v\n", n, errors.Unwrap(err))
				continue
			}
			if err != nil {
				return nil, cli.Exit(cli.ExitUsage, fmt.Errorf("reading filter: %w", err))
			}
			f := newLibFile(n, n, string(b))
			f.config = i < configDirs
			files = append(files, f)
		}
	}
	return files, nil
}

func newLibFile(name, path, src string) libFile {
	f := libFile{name: strings.TrimSuffix(filepath.Base(name), ".jq"), path: path, src: src}
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			f.desc = strings.TrimSpace(strings.TrimLeft(line, "#"))
			break
		}
		if line != "" {
			break
		}
	}
	return f
}

// parseLibrary parses the files' definitions and returns the files kept. A
// file of the config directory that does not parse is reported on stderr
// and skipped: one broken personal filter must not break every tl-fmt
// command. A file named by -L is the command's own business: it is fatal.
// With compiler options, a config file is also compiled (with the
// definitions kept before it): one that parses but does not compile (an
// undefined function) is skipped the same way.
func parseLibrary(files []libFile, stderr io.Writer, opts ...gojq.CompilerOption) ([]*gojq.FuncDef, []libFile, error) {
	var defs []*gojq.FuncDef
	kept := files[:0:0]
	for i := range files {
		f := &files[i]
		// A file holds definitions only; give it a body so it parses as a query.
		q, err := gojq.Parse(f.src + "\n.")
		if f.config && err != nil {
			_, msg := cli.Code(parseError(f.path, f.src, err, true))
			msg, _, _ = strings.Cut(msg, "\n")
			fmt.Fprintf(stderr, "tl-fmt: %s (file skipped)\n", msg)
			continue
		}
		if f.config && (len(q.Imports) > 0 || q.Meta != nil) {
			fmt.Fprintf(stderr, "tl-fmt: filter file %s: imports are not supported in filter files (file skipped)\n", f.path)
			continue
		}
		if f.config && len(opts) > 0 {
			check := &gojq.Query{FuncDefs: append(slices.Clip(defs), q.FuncDefs...), Term: q.Term}
			if _, cerr := gojq.Compile(check, opts...); cerr != nil {
				fmt.Fprintf(stderr, "tl-fmt: filter file %s: %v (file skipped)\n", f.path, cerr)
				continue
			}
		}
		if err != nil {
			name := f.path
			if name == "" {
				name = "(builtin) " + f.name + ".jq"
			}
			return nil, nil, parseError(name, f.src, err, true)
		}
		if len(q.Imports) > 0 || q.Meta != nil {
			return nil, nil, cli.Exit(exitCompile, fmt.Errorf("filter file %s: imports are not supported in filter files", f.path))
		}
		defs = append(defs, q.FuncDefs...)
		var uses []string
		for _, d := range q.FuncDefs {
			if strings.HasPrefix(d.Name, "_") {
				continue
			}
			u := d.Name
			if len(d.Args) > 0 {
				u += "(" + strings.Join(d.Args, "; ") + ")"
			}
			uses = append(uses, u)
		}
		slices.Sort(uses)
		f.usage = strings.Join(uses, ", ")
		kept = append(kept, *f)
	}
	return defs, kept, nil
}

// listFilters prints each named filter with its description.
func listFilters(o *options, env *cli.Env) error {
	files, err := loadLibrary(o, env.Getenv, env.Stderr)
	if err != nil {
		return err
	}
	// parseLibrary fills in each file's usage.
	if _, files, err = parseLibrary(files, env.Stderr); err != nil {
		return err
	}
	seen := map[string]int{}
	var list []libFile
	for _, f := range files {
		if strings.HasPrefix(f.name, "_") {
			continue
		}
		if i, ok := seen[f.name]; ok {
			list[i] = f
			continue
		}
		seen[f.name] = len(list)
		list = append(list, f)
	}
	width := 0
	for _, f := range list {
		width = max(width, len(f.usage))
	}
	var b strings.Builder
	for _, f := range list {
		desc := f.desc
		if f.path != "" {
			desc += " (" + f.path + ")"
		}
		fmt.Fprintf(&b, "%-*s  %s\n", width, f.usage, desc)
	}
	_, err = fmt.Fprint(env.Stdout, b.String())
	return quietPipe(err)
}
