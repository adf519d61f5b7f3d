package format

import (
	"strings"

	"github.com/tl-sh/tl/lib/cli"
)

// colorWanted decides whether to colour, with the precedence tl keeps
// (gojq, ripgrep, no-color.org, clicolors): the flag, then a non-empty
// NO_COLOR (off), then CLICOLOR_FORCE or FORCE_COLOR (on), then TERM=dumb
// (off), then whether stdout is a terminal.
func colorWanted(flag string, getenv func(string) string, tty bool) (bool, error) {
	switch flag {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
	default:
		return false, cli.Usagef("--color=%s: must be auto, always or never\ntry 'tl-fmt --help'", flag)
	}
	if getenv("NO_COLOR") != "" {
		return false, nil
	}
	if v := getenv("CLICOLOR_FORCE"); v != "" && v != "0" {
		return true, nil
	}
	if v := getenv("FORCE_COLOR"); v != "" && v != "0" && v != "false" {
		return true, nil
	}
	if getenv("TERM") == "dumb" {
		return false, nil
	}
	return tty, nil
}

// palette holds the escape sequences for JSON values (jq's order in
// JQ_COLORS: null, false, true, numbers, strings, arrays, objects, object
// keys) and for the parts of a line in -o line. A nil palette means no
// colour.
type palette struct {
	null, falseC, trueC, number, str, array, object, key string
}

// defaultJQColors are jq 1.7.1's defaults.
const defaultJQColors = "0;90:0;39:0;39:0;39:0;32:1;39:1;39:34;1"

const reset = "\x1b[0m"

func esc(code string) string {
	if code == "" {
		return ""
	}
	return "\x1b[" + code + "m"
}

// newPalette builds the JSON palette from JQ_COLORS, as jq does: each
// colon-separated field overrides one default, in order; a field that is
// not digits and semicolons makes jq ignore the whole variable (with a
// warning, returned here as ok=false).
func newPalette(jqColors string) (p *palette, ok bool) {
	fields := strings.Split(defaultJQColors, ":")
	ok = true
	if jqColors != "" {
		user := strings.Split(jqColors, ":")
		valid := len(user) <= len(fields)
		for _, f := range user {
			if len(f) > 12 || strings.Trim(f, "0123456789;") != "" {
				valid = false
			}
		}
		if valid {
			copy(fields, user)
		} else {
			ok = false
		}
	}
	return &palette{
		null: esc(fields[0]), falseC: esc(fields[1]), trueC: esc(fields[2]), number: esc(fields[3]),
		str: esc(fields[4]), array: esc(fields[5]), object: esc(fields[6]), key: esc(fields[7]),
	}, ok
}

// Colours of the parts of a -o line line.
const (
	lineDim     = "\x1b[2m"
	lineTenant  = "\x1b[36m"
	linePath    = "\x1b[1m"
	lineControl = "\x1b[33m"
)

// typeColor is the colour of an event type in -o line.
func typeColor(t string) string {
	switch t {
	case "pageview":
		return "\x1b[34m"
	case "click":
		return "\x1b[32m"
	case "custom":
		return "\x1b[35m"
	}
	return "\x1b[33m"
}
