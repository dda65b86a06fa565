package lines

import (
	"bytes"
	"strings"
	"testing"
)

func collect(f *Framer, chunks ...string) []Line {
	var out []Line
	for _, c := range chunks {
		f.Feed([]byte(c), func(l Line) { out = append(out, l) })
	}
	return out
}

func TestFramer(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []string // "!" prefix: overlong
	}{
		{"cr", []string{"A\rB\r"}, []string{"A", "B"}},
		{"lf", []string{"A\nB\n"}, []string{"A", "B"}},
		{"crlf is one terminator", []string{"A\r\nB\r\n"}, []string{"A", "B"}},
		{"crlf split", []string{"A\r", "\nB", "\r", "\n"}, []string{"A", "B"}},
		{"empty lines skipped", []string{"\r\n\r\n\nA\n\n\r"}, []string{"A"}},
		{"lfcr", []string{"A\n\rB\n\r"}, []string{"A", "B"}},
		{"stx etx", []string{"\x02RR123456785CN\x03"}, []string{"RR123456785CN"}},
		{"stx etx crlf", []string{"\x02A\x03\r\n\x02B\x03\r\n"}, []string{"A", "B"}},
		{"stx etx in chunks", []string{"\x02R", "R12", "3\x03", "\x02", "B", "\x03"}, []string{"RR123", "B"}},
		{"partial before stx ends it", []string{"junk\x02A\x03"}, []string{"junk", "A"}},
		{"unterminated held", []string{"A\rB"}, []string{"A"}},
		{"gs and controls pass", []string{"]C1\x1d00123\x1dX\x00\x7f\r"}, []string{"]C1\x1d00123\x1dX\x00\x7f"}},
		{"exactly max", []string{long + "\r\n"}, []string{long}},
		{"max plus one", []string{long + "y\r\nA\r\n"}, []string{"!" + long + "y", "A"}},
		{"overlong tail dropped", []string{long, "yz", strings.Repeat("q", 2000), "\r", "\nA\n"}, []string{"!" + long + "y", "A"}},
		{"overlong ended by etx", []string{"\x02" + long + "yyy\x03\x02B\x03"}, []string{"!" + long + "y", "B"}},
		{"overlong unterminated", []string{long + "yyyy"}, []string{"!" + long + "y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Framer
			got := collect(&f, tc.chunks...)
			var gs []string
			for _, l := range got {
				s := string(l.Data)
				if l.Overlong {
					s = "!" + s
				}
				gs = append(gs, s)
			}
			if strings.Join(gs, "|") != strings.Join(tc.want, "|") || len(gs) != len(tc.want) {
				t.Fatalf("got %q, want %q", gs, tc.want)
			}
		})
	}
}

func TestReset(t *testing.T) {
	var f Framer
	collect(&f, "partial")
	if !f.Pending() {
		t.Fatal("Pending false with a partial code")
	}
	f.Reset()
	got := collect(&f, "A\r")
	if len(got) != 1 || string(got[0].Data) != "A" {
		t.Fatalf("after Reset got %v", got)
	}
}

func TestDataNotAliased(t *testing.T) {
	var f Framer
	got := collect(&f, "AAA\r", "BBB\r")
	if !bytes.Equal(got[0].Data, []byte("AAA")) {
		t.Fatalf("first line overwritten: %q", got[0].Data)
	}
}
