package failover

import (
	"crypto/tls"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/internal/backoff"
	"github.com/cargogate/cargogate/internal/testenv"
)

// recorder is an injected Sleep: it records the delays asked for and waits
// only a few milliseconds of them.
type recorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (r *recorder) sleep(d time.Duration, stop <-chan struct{}) {
	r.mu.Lock()
	r.delays = append(r.delays, d)
	r.mu.Unlock()
	sleep(min(d, 5*time.Millisecond), stop)
}

func (r *recorder) got() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.delays...)
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestDelaysCappedAndJittered: the first dial does not wait; every later
// one waits Min doubling to the cap, scaled by the injected random number
// (±Jitter), never above the cap; the same attempt number with other random
// numbers waits differently (jitter); a connection resets to Min.
func TestDelaysCappedAndJittered(t *testing.T) {
	urls := []string{"tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "tcp://127.0.0.1:3"}
	run := func(rnd float64) []time.Duration {
		rec := &recorder{}
		b, err := New(urls, Options{Sleep: rec.sleep, Backoff: backoff.Backoff{Min: DefaultMin, Max: DefaultMax, Jitter: DefaultJitter, Rand: func() float64 { return rnd }}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 13 {
			b.BeforeDial(mustURL(t, urls[i%3]))
		}
		if d := rec.got(); len(d) != 12 {
			t.Fatalf("13 dials waited %d times, want 12 (not before the first): %v", len(d), d)
		}
		b.Up()
		b.BeforeDial(mustURL(t, urls[0]))
		return rec.got()
	}
	lowest, highest, middle := run(0), run(0.999999), run(0.5)
	base := DefaultMin
	for i := range 12 {
		lo := time.Duration(float64(base) * (1 - DefaultJitter))
		hi := min(time.Duration(float64(base)*(1+DefaultJitter)), DefaultMax)
		for _, d := range []time.Duration{lowest[i], highest[i], middle[i]} {
			if d < lo || d > hi || d > DefaultMax {
				t.Errorf("dial %d: delay %v outside [%v, %v] (cap %v)", i+2, d, lo, hi, DefaultMax)
			}
		}
		if lowest[i] == highest[i] {
			t.Errorf("dial %d: the same delay %v with random 0 and 1: no jitter", i+2, lowest[i])
		}
		base = min(base*2, DefaultMax)
	}
	if highest[11] != DefaultMax || lowest[11] != DefaultMax/2 {
		t.Errorf("capped delays: %v (random 0), %v (random 1); want %v and %v", lowest[11], highest[11], DefaultMax/2, DefaultMax)
	}
	if d := middle[12]; d != DefaultMin {
		t.Errorf("after a connection the next delay is %v, want %v", d, DefaultMin)
	}
}

// TestRotation against real dials: a paho client with Apply on [dead,
// dead, broker] connects to the broker after dialling the dead ones in
// turn; when the broker is lost, the reconnection tries it first, then the
// others, and comes back to it when it returns.
func TestRotation(t *testing.T) {
	m := testenv.NewMosquitto(t)
	dead := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "tcp://" + l.Addr().String()
	}
	urls := []string{dead(), dead(), m.URL()}
	rec := &recorder{}
	b, err := New(urls, Options{Sleep: rec.sleep})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var dialled []string
	o := b.Apply(mqtt.NewClientOptions().SetClientID("rotation").SetConnectTimeout(time.Second).
		SetAutoReconnect(true).SetConnectRetry(true).SetKeepAlive(2 * time.Second))
	before := o.OnConnectAttempt
	o.SetConnectionAttemptHandler(func(u *url.URL, tc *tls.Config) *tls.Config {
		mu.Lock()
		dialled = append(dialled, u.String())
		mu.Unlock()
		return before(u, tc)
	})
	c := mqtt.NewClient(o)
	defer c.Disconnect(0)
	c.Connect()
	waitFor(t, "connected to the live broker", func() bool { return b.Current() == m.URL() })
	mu.Lock()
	first := append([]string(nil), dialled...)
	dialled = nil
	mu.Unlock()
	if len(first) != 3 || first[0] != urls[0] || first[1] != urls[1] || first[2] != urls[2] {
		t.Fatalf("first round dialled %q, want the list in order", first)
	}

	m.Kill()
	waitFor(t, "connection lost", func() bool { return b.Current() == "" })
	waitFor(t, "two rounds tried", func() bool { mu.Lock(); defer mu.Unlock(); return len(dialled) >= 6 })
	m.Restart()
	waitFor(t, "back on the broker", func() bool { return b.Current() == m.URL() })
	mu.Lock()
	again := append([]string(nil), dialled...)
	mu.Unlock()
	for i := range 6 {
		if want := urls[(i+2)%3]; again[i] != want {
			t.Fatalf("reconnection dialled %q; want the last broker first, then the list in turn", again)
		}
	}
	for i, d := range rec.got() {
		if d > DefaultMax {
			t.Fatalf("delay %d: %v above the cap", i, d)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached", what)
		}
	}
}
