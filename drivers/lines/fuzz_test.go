package lines

import (
	"bytes"
	"testing"
)

// FuzzFramer feeds data whole, byte by byte, and cut where cuts says, and
// checks the framer's invariants: no panic, no framing byte in a line, no
// line longer than MaxLine+1, no empty line, and the same lines whatever the
// cuts.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("A\rB\nC\r\n"), []byte{1, 2, 3})
	f.Add([]byte("\x02RR123456785CN\x03\r\n"), []byte{5})
	f.Add(bytes.Repeat([]byte("x"), 600), []byte{200, 255, 7})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		whole := feed(data, nil)
		check(t, whole)
		if got := feed(data, []byte{1}); !same(got, whole) {
			t.Fatalf("byte by byte: %v, whole: %v", got, whole)
		}
		if got := feed(data, cuts); !same(got, whole) {
			t.Fatalf("cut by %v: %v, whole: %v", cuts, got, whole)
		}
	})
}

// feed feeds data in chunks whose sizes cycle through cuts (0 counts as 1);
// nil cuts: one chunk.
func feed(data, cuts []byte) []Line {
	var f Framer
	var out []Line
	emit := func(l Line) { out = append(out, l) }
	if len(cuts) == 0 {
		f.Feed(data, emit)
		return out
	}
	for i := 0; len(data) > 0; i++ {
		n := max(int(cuts[i%len(cuts)]), 1)
		n = min(n, len(data))
		f.Feed(data[:n], emit)
		data = data[n:]
	}
	return out
}

func check(t *testing.T, ls []Line) {
	t.Helper()
	for _, l := range ls {
		switch {
		case len(l.Data) == 0:
			t.Fatal("empty line emitted")
		case len(l.Data) > MaxLine+1:
			t.Fatalf("line of %d bytes", len(l.Data))
		case l.Overlong != (len(l.Data) == MaxLine+1):
			t.Fatalf("overlong=%v with %d bytes", l.Overlong, len(l.Data))
		case bytes.ContainsAny(l.Data, "\r\n\x02\x03"):
			t.Fatalf("framing byte in line %q", l.Data)
		}
	}
}

func same(a, b []Line) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Overlong != b[i].Overlong || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}
