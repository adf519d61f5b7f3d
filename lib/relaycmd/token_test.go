package relaycmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tl-sh/tl/lib/cli"
	"github.com/tl-sh/tl/lib/internal/auth"
)

func runTokenCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	err = runToken(context.Background(), args, env)
	return out.String(), errb.String(), err
}

func TestRunTokenGenerate(t *testing.T) {
	out, errOut, err := runTokenCmd(t, "", "--scopes", "publish,subscribe", "--tenants", "acme-*", "--name", "ci")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSuffix(out, "\n")
	if !strings.HasPrefix(token, "tl_") || len(token) != 3+43 || strings.Contains(token, "\n") {
		t.Fatalf("stdout = %q, want one generated token", out)
	}
	if strings.Contains(errOut, token) {
		t.Fatal("the token file line contains the token")
	}
	tab, err := auth.Parse("stderr", []byte(errOut))
	if err != nil || tab.Len() != 1 {
		t.Fatalf("the line on stderr does not parse: %q: %v", errOut, err)
	}
	if id, err := tab.Authorize(token, "acme-eu", auth.Subscribe); err != nil || id.Name != "ci" {
		t.Errorf("generated token refused: %v (id %s)", err, id)
	}
	if _, err := tab.Authorize(token, "acme-eu", auth.Admin); auth.Status(err) != 403 {
		t.Errorf("generated token has admin: %v", err)
	}
	// Two runs never give the same token.
	out2, _, _ := runTokenCmd(t, "", "--scopes", "publish", "--tenants", "acme")
	if out2 == out {
		t.Error("two generated tokens are equal")
	}
}

func TestRunTokenAppendAndStdin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	out, errOut, err := runTokenCmd(t, "", "--scopes", "admin", "--tenants", "*", "--append", file)
	if err != nil || errOut != "" {
		t.Fatalf("err %v, stderr %q", err, errOut)
	}
	adminTok := strings.TrimSpace(out)
	const own = "my-own-random-token-from-vault-123"
	out, errOut, err = runTokenCmd(t, own+"\n", "--stdin", "--scopes", "subscribe", "--tenants", "beta", "--append", file)
	if err != nil || out != "" || errOut != "" {
		t.Fatalf("--stdin --append: err %v, stdout %q, stderr %q", err, out, errOut)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", fi.Mode(), err)
	}
	s, err := auth.Open(file)
	if err != nil || s.Len() != 2 {
		t.Fatalf("Open: %v, %d tokens", err, s.Len())
	}
	if _, err := s.Authorize(adminTok, "", auth.Admin); err != nil {
		t.Error(err)
	}
	if _, err := s.Authorize(own, "beta", auth.Subscribe); err != nil {
		t.Error(err)
	}
	data, _ := os.ReadFile(file)
	if bytes.Contains(data, []byte(adminTok)) || bytes.Contains(data, []byte(own)) {
		t.Error("the token file holds a token")
	}

	// --stdin without --append prints the line on stdout.
	out, _, err = runTokenCmd(t, own, "--stdin", "--scopes", "publish", "--tenants", "x")
	if err != nil || !strings.HasPrefix(out, auth.Hash(own).String()+" publish x\n") {
		t.Errorf("--stdin: %q, %v", out, err)
	}
}

func TestRunTokenUsage(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no flags", "", nil, "--scopes and --tenants are required"},
		{"bad scope", "", []string{"--scopes", "write", "--tenants", "a"}, `unknown scope "write"`},
		{"bad tenant", "", []string{"--scopes", "publish", "--tenants", "a b"}, `tenant pattern "a b"`},
		{"line injection", "", []string{"--scopes", "publish", "--tenants", "a\nsha256:" + strings.Repeat("0", 64) + " admin *"}, `tenant pattern`},
		{"bad name", "", []string{"--scopes", "publish", "--tenants", "a", "--name", "x y"}, `name "x y"`},
		{"admin on a tenant", "", []string{"--scopes", "subscribe,admin", "--tenants", "acme"}, `admin needs --tenants '*'`},
		{"token as argument", "", []string{"--scopes", "publish", "--tenants", "a", "hunter2-hunter2-hunter2-x"}, "never given on the command line"},
		{"short stdin token", "hunter2\n", []string{"--stdin", "--scopes", "publish", "--tenants", "a"}, "at least 22 printable"},
		{"bad flag", "", []string{"--nope"}, "unknown flag: --nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runTokenCmd(t, tt.stdin, tt.args...)
			var ee *cli.ExitError
			if !errors.As(err, &ee) || ee.Code != cli.ExitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("stdout = %q on a usage error", out)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
	out, _, err := runTokenCmd(t, "", "--help")
	if err != nil || !strings.Contains(out, "usage: tl-relay token") || !strings.Contains(out, "--append") {
		t.Errorf("--help: %v %q", err, out)
	}
}

func TestRunTokenIngest(t *testing.T) {
	out, line, err := runTokenCmd(t, "", "--scopes", "ingest", "--tenants", "acme", "--origin", "https://shop.example", "--origin", "https://www.shop.example,http://localhost:3000", "--name", "shop")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out)
	if !strings.HasSuffix(line, " ingest acme shop origins=https://shop.example,https://www.shop.example,http://localhost:3000\n") {
		t.Errorf("line = %q", line)
	}
	tab, err := auth.Parse("stderr", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{"https://shop.example", "https://www.shop.example", "http://localhost:3000"} {
		if _, isIngest, err := tab.AuthorizeIngest(token, "acme", o); !isIngest || err != nil {
			t.Errorf("key refused from %s: %v %v", o, isIngest, err)
		}
	}
	// With --stdin, the line alone on stdout.
	const own = "my-own-random-ingest-key-from-vault-1"
	out, _, err = runTokenCmd(t, own+"\n", "--stdin", "--scopes", "ingest", "--tenants", "acme", "--origin", "*")
	if err != nil || !strings.HasSuffix(out, " ingest acme origins=*\n") || !strings.HasPrefix(out, auth.Hash(own).String()) {
		t.Errorf("--stdin: %q, %v", out, err)
	}
}

func TestRunTokenIngestUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--scopes", "ingest", "--tenants", "acme"}, "needs --origin"},
		{[]string{"--scopes", "publish", "--tenants", "acme", "--origin", "https://a.example"}, "only for --scopes ingest"},
		{[]string{"--scopes", "ingest,publish", "--tenants", "acme", "--origin", "https://a.example"}, "goes alone"},
		{[]string{"--scopes", "ingest", "--tenants", "acme-*", "--origin", "https://a.example"}, "one tenant"},
		{[]string{"--scopes", "ingest", "--tenants", "acme", "--origin", "https://a.example/x"}, "want scheme://host"},
		{[]string{"--scopes", "ingest", "--tenants", "acme", "--origin", "https://a.example#x"}, "no spaces or #"},
		{[]string{"--scopes", "ingest", "--tenants", "acme", "--origin", "https://a.example", "--name", "a=b"}, "use letters"},
	}
	for _, tt := range tests {
		out, _, err := runTokenCmd(t, "", tt.args...)
		if code, _ := cli.Code(err); code != cli.ExitUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v (exit %d), want usage error containing %q", tt.args, err, code, tt.want)
		}
		if out != "" {
			t.Errorf("%v: printed %q (a token for a refused line)", tt.args, out)
		}
	}
}
