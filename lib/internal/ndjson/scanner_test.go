package ndjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// scanAll returns what a scanner reports, one string per Scan: "N:text" or
// "N:too long".
func scanAll(r io.Reader, max int) ([]string, error) {
	sc := NewScanner(r, max)
	var out []string
	for sc.Scan() {
		if err := sc.LineErr(); err != nil {
			var tl *LineTooLongError
			if !errors.As(err, &tl) || tl.Line != sc.Line() || tl.Max != max {
				return nil, fmt.Errorf("bad LineErr %v at line %d", err, sc.Line())
			}
			if sc.Bytes() != nil {
				return nil, fmt.Errorf("line %d: Bytes with a LineErr", sc.Line())
			}
			out = append(out, fmt.Sprintf("%d:too long", sc.Line()))
			continue
		}
		out = append(out, fmt.Sprintf("%d:%s", sc.Line(), sc.Bytes()))
	}
	return out, sc.Err()
}

// reference is the obvious implementation the scanner must agree with.
func reference(in string, max int) []string {
	var out []string
	in = strings.TrimPrefix(in, BOM)
	if in == "" {
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(in, "\n"), "\n")
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		switch {
		case len(l) > max:
			out = append(out, fmt.Sprintf("%d:too long", i+1))
		case strings.Trim(l, " \t\r") == "":
		default:
			out = append(out, fmt.Sprintf("%d:%s", i+1, l))
		}
	}
	return out
}

func TestScanner(t *testing.T) {
	long := strings.Repeat("x", 100)
	cases := []struct {
		name string
		in   string
		max  int
		want []string
	}{
		{"empty", "", 10, nil},
		{"one", "a", 10, []string{"1:a"}},
		{"newline", "a\n", 10, []string{"1:a"}},
		{"crlf", "a\r\nb\r\n", 10, []string{"1:a", "2:b"}},
		{"blanks", "\n\n a\n \t \r\n\nb", 10, []string{"3: a", "6:b"}},
		{"only blanks", "\n \n\t\n", 10, nil},
		{"exactly max", "0123456789\n", 10, []string{"1:0123456789"}},
		{"exactly max crlf", "0123456789\r\nz", 10, []string{"1:0123456789", "2:z"}},
		{"max plus one", "01234567890\nz", 10, []string{"1:too long", "2:z"}},
		{"long middle", "a\n" + long + "\nb\n", 10, []string{"1:a", "2:too long", "3:b"}},
		{"long last no newline", "a\n" + long, 10, []string{"1:a", "2:too long"}},
		{"two long", long + "\n\n" + long + "\nc", 10, []string{"1:too long", "3:too long", "4:c"}},
		{"long blank", strings.Repeat(" ", 20) + "\nq", 10, []string{"1:too long", "2:q"}},
		// A byte order mark starts the input, not line 1 (jq ignores it too).
		{"bom", BOM + "a\nb", 10, []string{"1:a", "2:b"}},
		{"bom alone", BOM, 10, nil},
		{"bom blank line", BOM + "\nb", 10, []string{"2:b"}},
		{"bom max", BOM + "0123456789\nz", 10, []string{"1:0123456789", "2:z"}},
		{"bom short", "\xef\xbb", 10, []string{"1:\xef\xbb"}},
		{"bom not first", "a\n" + BOM + "b", 10, []string{"1:a", "2:" + BOM + "b"}},
	}
	readers := map[string]func(string) io.Reader{
		"whole":   func(s string) io.Reader { return strings.NewReader(s) },
		"onebyte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":    func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	}
	for _, c := range cases {
		if ref := reference(c.in, c.max); fmt.Sprint(ref) != fmt.Sprint(c.want) {
			t.Fatalf("%s: the reference says %q, the table %q", c.name, ref, c.want)
		}
		for rname, mk := range readers {
			got, err := scanAll(mk(c.in), c.max)
			if err != nil {
				t.Errorf("%s/%s: %v", c.name, rname, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s/%s:\n got %q\nwant %q", c.name, rname, got, c.want)
			}
		}
	}
}

// TestLongLinesBeyond64K: lines far over bufio.Scanner's default, and a
// limit above it, both work; the over-long line does not grow the buffer
// past the limit.
func TestLongLinesBeyond64K(t *testing.T) {
	big := strings.Repeat("y", 200<<10)
	in := "first\n" + big + "\nlast\n"
	got, err := scanAll(strings.NewReader(in), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1:first", "2:too long", "3:last"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
	sc := NewScanner(strings.NewReader(in), 300<<10)
	n := 0
	for sc.Scan() {
		n++
		if sc.Line() == 2 && len(sc.Bytes()) != len(big) {
			t.Errorf("line 2 has %d bytes, want %d", len(sc.Bytes()), len(big))
		}
	}
	if n != 3 {
		t.Errorf("%d lines, want 3", n)
	}
	sc = NewScanner(strings.NewReader(in), 1000)
	for sc.Scan() {
	}
	if cap(sc.buf) > 4096 {
		t.Errorf("buffer grew to %d for a 1000-byte limit", cap(sc.buf))
	}
}

// TestReadError: complete lines before a read error are still delivered,
// then Scan stops and Err reports it.
func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("a\nb\npartial"), iotest.ErrReader(boom))
	sc := NewScanner(r, 100)
	var got []string
	for sc.Scan() {
		got = append(got, string(sc.Bytes()))
	}
	if fmt.Sprint(got) != "[a b]" || !errors.Is(sc.Err(), boom) {
		t.Errorf("got %q, err %v", got, sc.Err())
	}
}

func TestReset(t *testing.T) {
	sc := NewScanner(strings.NewReader("a\nb\n"), 10)
	sc.Scan()
	sc.Reset(strings.NewReader("c\n"))
	if !sc.Scan() || string(sc.Bytes()) != "c" || sc.Line() != 1 {
		t.Errorf("after Reset: %q line %d", sc.Bytes(), sc.Line())
	}
	if sc.Scan() {
		t.Error("extra line after Reset")
	}
}

func FuzzScanner(f *testing.F) {
	for _, s := range []string{"", "a", "a\nb", "\r\n\r\n", "0123456789\r\n", "01234567890\n", " \t\nx\n\n", strings.Repeat("z", 40) + "\nq", BOM + "{}\n", "\xef\xbbx"} {
		f.Add([]byte(s), uint8(10))
	}
	f.Fuzz(func(t *testing.T, in []byte, max uint8) {
		m := int(max%64) + 1
		want := reference(string(in), m)
		for _, r := range []io.Reader{bytes.NewReader(in), iotest.OneByteReader(bytes.NewReader(in))} {
			got, err := scanAll(r, m)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("max %d, input %q:\n got %q\nwant %q", m, in, got, want)
			}
		}
	})
}

func BenchmarkScanner(b *testing.B) {
	var buf bytes.Buffer
	line := `{"tenant_id":"acme","timestamp":1795824000141,"type":"custom","path":"/checkout","metadata":{"session":"s2c4f29"}}` + "\n"
	for buf.Len() < 1<<20 {
		buf.WriteString(line)
	}
	data := buf.Bytes()
	sc := NewScanner(nil, 64<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sc.Reset(bytes.NewReader(data))
		for sc.Scan() {
		}
	}
}
