package lines

import (
	"bytes"
	"testing"
)

// FuzzFramer feeds data to a Lines framer whole, byte by byte, and cut where
// cuts says, and checks the framer's invariants: no panic, no framing byte in
// a line, no line longer than MaxLine+1, no empty line, and the same lines
// whatever the cuts.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("A\rB\nC\r\n"), []byte{1, 2, 3})
	f.Add([]byte("\x02RR123456785CN\x03\r\n"), []byte{5})
	f.Add(bytes.Repeat([]byte("x"), 600), []byte{200, 255, 7})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		whole := invariant(t, Lines, data, cuts)
		for _, l := range whole {
			if bytes.ContainsAny(l.Data, "\r\n") {
				t.Fatalf("CR or LF in line %q", l.Data)
			}
		}
	})
}

// FuzzFramerSTXETX checks the STXETX framer's invariants as FuzzFramer does,
// and two more: without CR or LF in the stream it finds the same codes as
// Lines, less those outside any frame; and codes framed with noise between
// the frames come back exactly.
func FuzzFramerSTXETX(f *testing.F) {
	f.Add([]byte("\x02RR123456785CN\x03\r\n"), []byte{5})
	f.Add([]byte("noise\x02A\x03\x02\x03\x02half"), []byte{1})
	f.Add([]byte("\x02]C1\x1d00012345\x03"), []byte{2, 9})
	f.Add(append([]byte{STX}, bytes.Repeat([]byte("x"), 600)...), []byte{200, 255, 7})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		got := invariant(t, STXETX, data, cuts)

		if !bytes.ContainsAny(data, "\r\n") && !subsequence(got, feed(Lines, data, nil)) {
			t.Fatalf("stx-etx lines %v are not among the lines-mode ones %v", got, feed(Lines, data, nil))
		}

		// Frame the bytes of data, cut into codes where cuts says, with the
		// bytes outside frames being noise.
		var stream []byte
		var want []Line
		rest := bytes.Map(func(r rune) rune {
			if r == STX || r == ETX {
				return -1
			}
			return r
		}, data)
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = min(max(int(cuts[i%len(cuts)]), 1), n)
			}
			stream = append(stream, "noise\r\n"...)
			stream = append(append(append(stream, STX), rest[:n]...), ETX)
			code := rest[:n]
			if len(code) > MaxLine {
				want = append(want, Line{Data: code[:MaxLine+1], Overlong: true})
			} else {
				want = append(want, Line{Data: code})
			}
			rest = rest[n:]
		}
		if got := feed(STXETX, stream, []byte{3}); !same(got, want) {
			t.Fatalf("framed codes %v came back as %v", want, got)
		}
	})
}

// invariant checks what holds for every framing and returns the lines of
// data fed whole.
func invariant(t *testing.T, m Framing, data, cuts []byte) []Line {
	t.Helper()
	whole := feed(m, data, nil)
	check(t, whole)
	if got := feed(m, data, []byte{1}); !same(got, whole) {
		t.Fatalf("byte by byte: %v, whole: %v", got, whole)
	}
	if got := feed(m, data, cuts); !same(got, whole) {
		t.Fatalf("cut by %v: %v, whole: %v", cuts, got, whole)
	}
	return whole
}

// feed feeds data in chunks whose sizes cycle through cuts (0 counts as 1);
// nil cuts: one chunk.
func feed(m Framing, data, cuts []byte) []Line {
	f := Framer{Framing: m}
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
		case bytes.ContainsAny(l.Data, "\x02\x03"):
			t.Fatalf("STX or ETX in line %q", l.Data)
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

// subsequence reports whether every line of a is in b, in order.
func subsequence(a, b []Line) bool {
	for _, l := range a {
		for len(b) > 0 && (b[0].Overlong != l.Overlong || !bytes.Equal(b[0].Data, l.Data)) {
			b = b[1:]
		}
		if len(b) == 0 {
			return false
		}
		b = b[1:]
	}
	return true
}
