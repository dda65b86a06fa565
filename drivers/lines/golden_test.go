package lines

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/framing/*.golden from the framer's output")

// TestGolden frames each testdata/framing/*.in with both framings, whole and
// byte by byte, and compares the codes with the .golden file next to it
// (go test -run Golden -update rewrites them).
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/framing/*.in")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			for _, m := range []Framing{Lines, STXETX} {
				ls := feed(m, data, nil)
				if byByte := feed(m, data, []byte{1}); !same(byByte, ls) {
					t.Fatalf("%v byte by byte: %v, whole: %v", m, byByte, ls)
				}
				fmt.Fprintf(&out, "%s:\n", m)
				for _, l := range ls {
					mark := ""
					if l.Overlong {
						mark = "overlong "
					}
					fmt.Fprintf(&out, "\t%s%+q\n", mark, l.Data)
				}
			}
			golden := strings.TrimSuffix(in, ".in") + ".golden"
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%s: got\n%s\nwant\n%s", golden, out.Bytes(), want)
			}
		})
	}
}

// A 64 KiB code without a terminator is one overlong read, at once, in either
// framing; what follows its terminator is read normally.
func TestLongUnterminated(t *testing.T) {
	big := bytes.Repeat([]byte("A"), 64<<10)
	for _, m := range []Framing{Lines, STXETX} {
		t.Run(m.String(), func(t *testing.T) {
			f := Framer{Framing: m}
			var got []Line
			emit := func(l Line) { got = append(got, l) }
			f.Feed([]byte{STX}, emit)
			for i := 0; i < len(big); i += 4096 {
				f.Feed(big[i:i+4096], emit)
			}
			if len(got) != 1 || !got[0].Overlong || len(got[0].Data) != MaxLine+1 {
				t.Fatalf("64 KiB unterminated: %d lines", len(got))
			}
			if f.Pending() {
				t.Fatal("the dropped tail is held as pending")
			}
			f.Feed([]byte("\x03\x02OK\x03"), emit)
			if len(got) != 2 || string(got[1].Data) != "OK" {
				t.Fatalf("after the long code: %v", got[1:])
			}
		})
	}
}

func TestParseFraming(t *testing.T) {
	for in, want := range map[string]Framing{"": Lines, "lines": Lines, "stx-etx": STXETX} {
		if got, err := ParseFraming(in); err != nil || got != want {
			t.Errorf("ParseFraming(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFraming("etx"); err == nil {
		t.Error("ParseFraming(etx): no error")
	}
}
