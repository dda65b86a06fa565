package drivers

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
)

func runGate(t *testing.T, cfg gateCfg) (Gate, *recorder, func()) {
	t.Helper()
	cfg.Driver = "serial"
	g, err := Default().NewGate(cfg.device())
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := start(t, func(ctx context.Context) error { return g.Run(ctx, rec.state) })
	return g, rec, stop
}

func TestSerialGateFrames(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pass, stop string
		wantPass   string
		wantStop   string
	}{
		{"defaults", "", "", "PASS\r\n", "STOP\r\n"},
		{"relay board escapes", `\xA0\x01\x01\xA2`, `\xA0\x01\x00\xA1`, "\xA0\x01\x01\xA2", "\xA0\x01\x00\xA1"},
		{"text escapes", `OPEN\r`, `ALARM\n`, "OPEN\r", "ALARM\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPty(t)
			g, rec, stop := runGate(t, gateCfg{Port: p.Path, Pass: tc.pass, Stop: tc.stop})
			rec.expectState(t, Up)
			ctx := context.Background()
			for _, step := range []struct {
				pass bool
				want string
			}{{true, tc.wantPass}, {false, tc.wantStop}, {true, tc.wantPass}} {
				if err := g.Signal(ctx, step.pass); err != nil {
					t.Fatalf("Signal(%v): %v", step.pass, err)
				}
				if got := string(p.readN(t, len(step.want))); got != step.want {
					t.Fatalf("Signal(%v) wrote %q, want %q", step.pass, got, step.want)
				}
			}
			stop()
			rec.noState(t)
		})
	}
}

// respond plays a gate controller: for each frame it reads, it writes reply.
func respond(t *testing.T, p *testPty, frameLen int, reply string) <-chan error {
	done := make(chan error, 1)
	go func() {
		p.Master.SetReadDeadline(time.Now().Add(wait))
		b := make([]byte, frameLen)
		if _, err := readFull(p.Master, b); err != nil {
			done <- err
			return
		}
		_, err := p.Master.Write([]byte(reply))
		done <- err
	}()
	return done
}

func TestSerialGateAck(t *testing.T) {
	p := newPty(t)
	g, rec, stop := runGate(t, gateCfg{Port: p.Path, Ack: `OK\r\n`, AckTimeout: time.Second})
	rec.expectState(t, Up)
	ctx := context.Background()

	// Acked, the ack arriving in two pieces after some noise.
	done := respond(t, p, len("PASS\r\n"), "noise\x06OK\r")
	go func() {
		<-done
		p.Master.Write([]byte("\n"))
	}()
	if err := g.Signal(ctx, true); err != nil {
		t.Fatalf("acked Signal: %v", err)
	}

	// Not acked: an error, and the gate is at fault.
	err := g.Signal(ctx, false)
	if !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("unacked Signal: %v, want ErrAckTimeout", err)
	}
	p.readN(t, len("STOP\r\n"))
	rec.expectState(t, Fault)

	// The next acked frame clears the fault.
	done = respond(t, p, len("STOP\r\n"), "OK\r\n")
	if err := g.Signal(ctx, false); err != nil {
		t.Fatalf("acked Signal after a fault: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.expectState(t, Up)
	stop()
	rec.noState(t)
}

func TestSerialGateAckWrongReply(t *testing.T) {
	p := newPty(t)
	g, rec, _ := runGate(t, gateCfg{Port: p.Path, Ack: `\x06`, AckTimeout: 100 * time.Millisecond})
	rec.expectState(t, Up)
	done := respond(t, p, len("PASS\r\n"), "\x15") // NAK
	if err := g.Signal(context.Background(), true); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("Signal answered with NAK: %v, want ErrAckTimeout", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.expectState(t, Fault)
}

func TestSerialGateSignalCancelled(t *testing.T) {
	p := newPty(t)
	g, rec, _ := runGate(t, gateCfg{Port: p.Path, Ack: `OK`, AckTimeout: time.Hour})
	rec.expectState(t, Up)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- g.Signal(ctx, true) }()
	p.readN(t, len("PASS\r\n"))
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Signal: %v, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("Signal did not return after its ctx was cancelled")
	}
}

func TestSerialGateNotOpen(t *testing.T) {
	path := tempPort(t)
	g, err := Default().NewGate(gateCfg{Driver: "serial", Port: path}.device())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Signal(context.Background(), true); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Signal before Run: %v, want ErrNotOpen", err)
	}

	rec := newRecorder()
	stop := start(t, func(ctx context.Context) error { return g.Run(ctx, rec.state) })
	rec.expectState(t, Down)
	if err := g.Signal(context.Background(), false); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Signal while down: %v, want ErrNotOpen", err)
	}

	p1 := newPty(t)
	link(t, p1.Path, path)
	rec.expectState(t, Up)
	if err := g.Signal(context.Background(), true); err != nil {
		t.Fatalf("Signal when up: %v", err)
	}
	p1.readN(t, len("PASS\r\n"))

	// The controller hangs up: Down, Signal fails at once, then it comes back.
	os.Remove(path)
	p1.Close()
	rec.expectState(t, Down)
	if err := g.Signal(context.Background(), true); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Signal after hang-up: %v, want ErrNotOpen", err)
	}
	p2 := newPty(t)
	link(t, p2.Path, path)
	rec.expectState(t, Up)
	if err := g.Signal(context.Background(), false); err != nil {
		t.Fatalf("Signal after reopen: %v", err)
	}
	if got := string(p2.readN(t, len("STOP\r\n"))); got != "STOP\r\n" {
		t.Fatalf("wrote %q after reopen", got)
	}
	stop()

	if err := g.Signal(context.Background(), true); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Signal after Run returned: %v, want ErrNotOpen", err)
	}
}

// Signals from several goroutines are written whole, one after another.
func TestSerialGateSerialized(t *testing.T) {
	p := newPty(t)
	g, rec, _ := runGate(t, gateCfg{Port: p.Path, Pass: `PPPPPPPP`, Stop: `SSSSSSSS`})
	rec.expectState(t, Up)
	const n = 20
	errc := make(chan error, n)
	for i := range n {
		go func() { errc <- g.Signal(context.Background(), i%2 == 0) }()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	got := p.readN(t, 8*n)
	for i := 0; i < len(got); i += 8 {
		if f := string(got[i : i+8]); f != "PPPPPPPP" && f != "SSSSSSSS" {
			t.Fatalf("frames interleaved: %q", got)
		}
	}
}

func TestSerialGateNoLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	p := newPty(t)
	g, rec, stop := runGate(t, gateCfg{Port: p.Path, Ack: "K", AckTimeout: 50 * time.Millisecond})
	rec.expectState(t, Up)
	if err := g.Signal(context.Background(), true); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("Signal: %v, want ErrAckTimeout", err)
	}
	rec.expectState(t, Fault)
	p.Close()
	rec.expectState(t, Down)
	stop()
	settles(t, base)
}

// Noise from the controller: the ack is found after 64 KiB of random bytes;
// noise without the ack, or half the ack then silence, is no ack.
func TestSerialGateNoise(t *testing.T) {
	junk := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(6, 6))
	for i := range junk {
		junk[i] = byte(r.Uint32())
		if junk[i] == 'K' {
			junk[i] = 'k' // the ack must not appear by chance
		}
	}
	for _, tc := range []struct {
		name  string
		reply string
		acked bool
	}{
		{"ack after 64 KiB of noise", string(junk) + "OK\r\n", true},
		{"noise, no ack", string(junk[:4096]), false},
		{"half the ack then silence", "OK", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPty(t)
			g, rec, _ := runGate(t, gateCfg{Port: p.Path, Ack: `OK\r\n`, AckTimeout: 300 * time.Millisecond})
			rec.expectState(t, Up)
			done := make(chan error, 1)
			go func() {
				p.Master.SetReadDeadline(time.Now().Add(wait))
				if _, err := readFull(p.Master, make([]byte, len("PASS\r\n"))); err != nil {
					done <- err
					return
				}
				_, err := p.Master.Write([]byte(tc.reply))
				done <- err
			}()
			err := g.Signal(context.Background(), true)
			if tc.acked && err != nil {
				t.Fatalf("Signal: %v", err)
			}
			if !tc.acked && !errors.Is(err, ErrAckTimeout) {
				t.Fatalf("Signal: %v, want ErrAckTimeout", err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !tc.acked {
				rec.expectState(t, Fault)
			}
		})
	}
}

// The controller hangs up under the gateway's feet: the Signal fails (a
// write error, or not open if Run saw it first), the gate is Down.
func TestSerialGateWriteError(t *testing.T) {
	p := newPty(t)
	g, rec, _ := runGate(t, gateCfg{Port: p.Path, ReconnectMax: 20 * time.Millisecond})
	rec.expectState(t, Up)
	p.Master.Close()
	if err := g.Signal(context.Background(), true); err == nil {
		t.Fatal("Signal to a hung-up controller succeeded")
	}
	rec.expectState(t, Down)
	if err := g.Signal(context.Background(), false); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Signal while down: %v, want ErrNotOpen", err)
	}
}

// A station reads its devices' state changes from a bounded channel and
// calls Signal from the same loop. A state change reported while that
// channel is full must not hold the gate: the loop, inside Signal, is the
// only one that would drain it. Played here with a channel of two: Up and
// Down fill it, the Up of the reopened port waits; the loop then signals
// (PASS, then a STOP whose ack never comes: a Fault to report) before it
// drains, and must find every state, the latest last.
func TestSerialGateStateChannelFullNoDeadlock(t *testing.T) {
	path := tempPort(t)
	p1 := newPty(t)
	link(t, p1.Path, path)
	g, err := Default().NewGate(gateCfg{Driver: "serial", Port: path, Ack: "K", AckTimeout: 50 * time.Millisecond,
		ReconnectMax: 20 * time.Millisecond}.device())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan stateEvent, 2) // the station's bounded channel
	tried := make(chan State, 100)      // every report the driver tried to make
	stateFn := func(s State, detail string) {
		tried <- s
		select { // as the station's stateFunc: blocks while the channel is full
		case changes <- stateEvent{s, detail}:
		case <-ctx.Done():
		}
	}
	runDone := make(chan error, 1)
	go func() { runDone <- g.Run(ctx, stateFn) }()
	defer func() {
		cancel()
		select {
		case <-runDone:
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	}()
	expectTried := func(want State) {
		t.Helper()
		select {
		case s := <-tried:
			if s != want {
				t.Fatalf("reported %q, want %q", s, want)
			}
		case <-time.After(wait):
			t.Fatalf("no %q reported within %v", want, wait)
		}
	}
	expectTried(Up)
	p1.Close() // Down
	expectTried(Down)
	p2 := newPty(t)
	link(t, p2.Path, path)
	expectTried(Up) // the channel is full: this report cannot be delivered yet
	if len(changes) != cap(changes) {
		t.Fatalf("channel holds %d, want it full (%d)", len(changes), cap(changes))
	}

	// The loop signals before it drains the channel.
	acked := respond(t, p2, len("PASS\r\n"), "K")
	signalled := make(chan error, 2)
	go func() {
		signalled <- g.Signal(context.Background(), true)
		signalled <- g.Signal(context.Background(), false) // no ack: a Fault to report
	}()
	for i, want := range []error{nil, ErrAckTimeout} {
		select {
		case err := <-signalled:
			if !errors.Is(err, want) && !(want == nil && err == nil) {
				t.Fatalf("Signal %d: %v, want %v", i, err, want)
			}
		case <-time.After(wait):
			t.Fatalf("Signal %d did not return within %v with the state channel full: deadlock", i, wait)
		}
	}
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
	p2.readN(t, len("STOP\r\n"))

	// The loop drains: every state, in order, the latest (Fault) last.
	var got []State
	for len(got) < 4 {
		select {
		case e := <-changes:
			got = append(got, e.s)
		case <-time.After(wait):
			t.Fatalf("states %v, then nothing within %v", got, wait)
		}
	}
	if want := []State{Up, Down, Up, Fault}; !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
}
