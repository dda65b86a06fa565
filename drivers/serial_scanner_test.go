package drivers

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
)

func runScanner(t *testing.T, cfg scannerCfg) (*recorder, func()) {
	t.Helper()
	s, err := Default().NewScanner(cfg.device())
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := start(t, func(ctx context.Context) error { return s.Run(ctx, rec.emit, rec.state) })
	return rec, stop
}

func TestSerialScannerLines(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []string // "!" prefix: overlong
	}{
		{"cr lf crlf in chunks", []string{"RR1234", "56785CN\r", "\nA\rB", "\n", "C\r", "\n\r\n"}, []string{"RR123456785CN", "A", "B", "C"}},
		{"stx etx", []string{"\x02]C1\x1d00012", "345\x03\x02B\x03\r\n"}, []string{"]C1\x1d00012345", "B"}},
		{"cr is not translated", []string{"A\rB\r"}, []string{"A", "B"}},
		{"overlong", []string{long, "yyy", strings.Repeat("z", 3000), "\r\nOK\r\n"}, []string{"!" + long + "y", "OK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPty(t)
			rec, stop := runScanner(t, scannerCfg{Driver: "serial", Port: p.Path, Baud: 115200})
			rec.expectState(t, Up)
			for _, c := range tc.chunks {
				p.write(t, c)
			}
			rec.expectReads(t, tc.want...)
			stop()
			rec.noReads(t)
			rec.noState(t) // no Down on the way out
		})
	}
}

func TestSerialScannerDebounce(t *testing.T) {
	p := newPty(t)
	rec, stop := runScanner(t, scannerCfg{Driver: "serial", Port: p.Path, Debounce: 1 << 62})
	rec.expectState(t, Up)
	p.write(t, "A\rA\r\nA\nB\rA\rA\r")
	p.write(t, "END\r")
	rec.expectReads(t, "A", "B", "A", "END")
	stop()
	rec.noReads(t)
}

// The port is a symlink (as udev makes them); the device behind it hangs up,
// the link disappears, then comes back pointing at another device.
func TestSerialScannerPortDisappears(t *testing.T) {
	path := tempPort(t)
	p1 := newPty(t)
	link(t, p1.Path, path)
	rec, stop := runScanner(t, scannerCfg{Driver: "serial", Port: path})
	rec.expectState(t, Up)
	p1.write(t, "ONE\r")
	rec.expectReads(t, "ONE")

	os.Remove(path)
	p1.Close()
	rec.expectState(t, Down)

	p2 := newPty(t)
	link(t, p2.Path, path)
	rec.expectState(t, Up)
	p2.write(t, "TWO\r")
	rec.expectReads(t, "TWO")
	stop()
	rec.noState(t)
}

// The symlink is re-pointed while the old device stays: the driver notices
// by the path, not by a read error.
func TestSerialScannerPortReplaced(t *testing.T) {
	path := tempPort(t)
	p1 := newPty(t)
	link(t, p1.Path, path)
	rec, stop := runScanner(t, scannerCfg{Driver: "serial", Port: path})
	rec.expectState(t, Up)

	p2 := newPty(t)
	link(t, p2.Path, path)
	rec.expectState(t, Down)
	rec.expectState(t, Up)
	p2.write(t, "TWO\r")
	rec.expectReads(t, "TWO")
	stop()
}

// A port that does not exist yet: Down once (not once per attempt), then Up.
func TestSerialScannerPortAppears(t *testing.T) {
	path := tempPort(t)
	rec, stop := runScanner(t, scannerCfg{Driver: "serial", Port: path})
	detail := rec.expectState(t, Down)
	if !strings.Contains(detail, path) {
		t.Errorf("Down detail %q does not name the port", detail)
	}
	p := newPty(t)
	link(t, p.Path, path)
	rec.expectState(t, Up)
	p.write(t, "X\n")
	rec.expectReads(t, "X")
	stop()
}

func TestSerialScannerNoLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	p := newPty(t)
	rec, stop := runScanner(t, scannerCfg{Driver: "serial", Port: p.Path})
	rec.expectState(t, Up)
	p.write(t, "A\r")
	rec.expectReads(t, "A")
	p.Close()
	rec.expectState(t, Down)
	stop()
	settles(t, base)
}
