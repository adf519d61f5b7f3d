package format

import (
	"embed"
	"fmt"
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
func loadLibrary(o *options, getenv func(string) string) ([]libFile, error) {
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
			if err != nil {
				return nil, cli.Exit(cli.ExitUsage, fmt.Errorf("reading filter: %w", err))
			}
			files = append(files, newLibFile(n, n, string(b)))
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

// parseLibrary parses the files' definitions.
func parseLibrary(files []libFile) ([]*gojq.FuncDef, error) {
	var defs []*gojq.FuncDef
	for i := range files {
		f := &files[i]
		// A file holds definitions only; give it a body so it parses as a query.
		q, err := gojq.Parse(f.src + "\n.")
		if err != nil {
			name := f.path
			if name == "" {
				name = "(builtin) " + f.name + ".jq"
			}
			return nil, parseError(name, f.src, err, true)
		}
		if len(q.Imports) > 0 || q.Meta != nil {
			return nil, cli.Exit(exitCompile, fmt.Errorf("filter file %s: imports are not supported in filter files", f.path))
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
	}
	return defs, nil
}

// listFilters prints each named filter with its description.
func listFilters(o *options, env *cli.Env) error {
	files, err := loadLibrary(o, env.Getenv)
	if err != nil {
		return err
	}
	if _, err := parseLibrary(files); err != nil {
		// parseLibrary fills in each file's usage.
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
