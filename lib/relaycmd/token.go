package relaycmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/auth"
)

// minTokenLen is the shortest token `tl-relay token --stdin` accepts: a
// bring-your-own token must be long enough to be random (at least 128 bits
// in base64 is 22 characters; a human-chosen word is refused).
const minTokenLen = 22

const tokenUsage = `usage: tl-relay token --scopes LIST --tenants LIST [--name NAME] [--append FILE] [--stdin]
       tl-relay token --scopes ingest --tenants TENANT --origin ORIGIN... [--name NAME] [--append FILE]

Make a line for the token file of tl-relay --tokens FILE. The file holds
only the SHA-256 of each token, never the token itself.

By default a new random token (256 bits) is generated: the token is printed
on stdout (give it to the client, in TL_TOKEN or a --token-file) and the
line goes to FILE with --append, else to stderr. With --stdin the token is
read from stdin instead (one line, at least 22 characters) and the line goes
to FILE with --append, else to stdout.

  tl-relay token --scopes publish --tenants acme --name ci \
      --append /etc/tl/tokens > ci.token
  kill -HUP $(pidof tl-relay)     # the relay reloads the file

A public ingest key (--scopes ingest) may be embedded in a web page: it may
only publish, to one tenant, from pages of the --origin values, at the
relay's --ingest-rate per client address (see tl-relay(1), PUBLIC INGEST
KEYS). Revoke it by deleting its line and sending SIGHUP.

  tl-relay token --scopes ingest --tenants acme \
      --origin https://shop.example --append /etc/tl/tokens

Flags:
`

// runToken is `tl-relay token`: it makes a line of the token file.
func runToken(ctx context.Context, args []string, env *cli.Env) error {
	fs := pflag.NewFlagSet("tl-relay token", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	scopesFlag := fs.String("scopes", "", "grant these scopes: a comma-separated `LIST` of publish, subscribe, admin; or ingest alone (a public ingest key)")
	tenants := fs.String("tenants", "", "on these tenants: a comma-separated `LIST` of names, prefixes ending in * (acme-*), or * for all")
	name := fs.String("name", "", "label the line with `NAME` (shown in the relay's logs instead of the token)")
	appendTo := fs.String("append", "", "append the line to `FILE` (created with mode 0600)")
	origins := fs.StringSlice("origin", nil, "with --scopes ingest: let web pages from `ORIGIN` (https://host[:port], or *) use the key; repeat or comma-separate")
	stdin := fs.Bool("stdin", false, "read the token from stdin instead of generating one")
	help := fs.BoolP("help", "h", false, "print this help")
	version := fs.Bool("version", false, "print the version")
	if err := fs.Parse(args); err != nil {
		return cli.Usagef("%v\ntry 'tl-relay token --help'", err)
	}
	if *help {
		fmt.Fprint(env.Stdout, tokenUsage+fs.FlagUsages())
		return nil
	}
	if *version {
		fmt.Fprintln(env.Stdout, cli.VersionLine("tl-relay"))
		return nil
	}
	if fs.NArg() > 0 {
		// Not echoed: it may well be a token.
		return cli.Usagef("unexpected argument (a token is never given on the command line: use --stdin)\ntry 'tl-relay token --help'")
	}
	if *scopesFlag == "" || *tenants == "" {
		return cli.Usagef("--scopes and --tenants are required\ntry 'tl-relay token --help'")
	}
	scopes, err := auth.ParseScopes(*scopesFlag)
	if err != nil {
		return cli.Usagef("--scopes: %v", err)
	}

	var token string
	if *stdin {
		r := bufio.NewReader(io.LimitReader(env.Stdin, 4096))
		l, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the token from stdin: %w", err)
		}
		token = strings.TrimSpace(l)
		if len(token) < minTokenLen || !printable(token) {
			return cli.Usagef("the token on stdin must be one word of at least %d printable ASCII characters (use a random one: tl-relay token without --stdin makes one)", minTokenLen)
		}
	} else {
		if token, err = auth.NewToken(); err != nil {
			return err
		}
	}
	var line string
	switch {
	case scopes&auth.Ingest != 0:
		if scopes != auth.Ingest {
			return cli.Usagef("--scopes: ingest goes alone (an ingest key may only publish)\ntry 'tl-relay token --help'")
		}
		if len(*origins) == 0 {
			return cli.Usagef("--scopes ingest needs --origin: the web pages that may use the key\ntry 'tl-relay token --help'")
		}
		line, err = auth.IngestLine(token, *tenants, *name, *origins)
	case len(*origins) > 0:
		return cli.Usagef("--origin is only for --scopes ingest\ntry 'tl-relay token --help'")
	default:
		line, err = auth.Line(token, scopes, *tenants, *name)
	}
	if err != nil {
		return cli.Usagef("%v", err)
	}

	if *appendTo != "" {
		f, err := os.OpenFile(*appendTo, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("token file: %w", err)
		}
		_, werr := fmt.Fprintln(f, line)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("token file: %w", werr)
		}
	}
	switch {
	case !*stdin:
		if *appendTo == "" {
			fmt.Fprintln(env.Stderr, line)
		}
		_, err = fmt.Fprintln(env.Stdout, token)
	case *appendTo == "":
		_, err = fmt.Fprintln(env.Stdout, line)
	}
	return err
}

// printable reports whether s can travel in an Authorization header as is:
// visible ASCII, no spaces.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
