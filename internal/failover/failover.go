// Package failover spreads an MQTT client's connection attempts over a list
// of brokers (config central.brokers): tried in turn, each attempt after the
// first preceded by a capped, jittered delay (internal/backoff), a
// reconnection starting with the broker last connected to (it holds the
// persistent session), then the next ones in the list.
//
// paho alone tries its servers always from the first and waits between
// rounds without jitter, so that every gateway of a site reconnects at the
// same instants. Brokers takes the waiting over: Apply sets paho's own
// retry intervals to a millisecond, sleeps before each dial in paho's
// connection-attempt handler and rotates the server list in its
// reconnecting handler. The same Brokers may serve a paho client that
// reconnects itself (the order connection, central) and a loop that makes
// a new client per attempt (the events connection): the state is the
// Brokers', not the client's.
package failover

import (
	"crypto/tls"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/internal/backoff"
)

// Default delays between two connection attempts: 100 ms doubling to 5 s,
// ±50% jitter (capped at 5 s).
const (
	DefaultMin    = 100 * time.Millisecond
	DefaultMax    = 5 * time.Second
	DefaultJitter = 0.5
)

// Options configure Brokers.
type Options struct {
	// Conn names the connection in the log ("orders", "events", "central").
	Conn string
	Log  *slog.Logger // nil: discard
	// Backoff is the delay before each dial but the very first; its zero
	// value takes the defaults above.
	Backoff backoff.Backoff
	// Sleep waits d or until stop is closed; nil: a real timer. Tests set
	// it to record the delays.
	Sleep func(d time.Duration, stop <-chan struct{})
}

// Brokers is one connection's broker list and its place in it. Its methods
// are safe for concurrent use.
type Brokers struct {
	urls  []*url.URL
	conn  string
	log   *slog.Logger
	sleep func(time.Duration, <-chan struct{})
	stop  chan struct{}
	once  sync.Once

	mu        sync.Mutex
	bo        backoff.Backoff
	attempted bool   // a dial was made: every later one waits first
	dialing   int    // index of the broker dialled last
	last      int    // index of the broker last connected to, -1: none
	current   string // the broker the connection is on, "": down
}

// New makes the Brokers of urls (at least one, each scheme://host:port).
func New(urls []string, o Options) (*Brokers, error) {
	b := &Brokers{conn: o.Conn, log: o.Log, sleep: o.Sleep, stop: make(chan struct{}), bo: o.Backoff, last: -1}
	if len(urls) == 0 {
		return nil, ErrNoBroker
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return nil, &BrokerError{URL: s}
		}
		b.urls = append(b.urls, u)
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.sleep == nil {
		b.sleep = sleep
	}
	if b.bo.Min == 0 && b.bo.Max == 0 && b.bo.Jitter == 0 {
		b.bo.Min, b.bo.Max, b.bo.Jitter = DefaultMin, DefaultMax, DefaultJitter
	}
	return b, nil
}

func sleep(d time.Duration, stop <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
}

// URLs returns the broker list as configured.
func (b *Brokers) URLs() []string {
	out := make([]string, len(b.urls))
	for i, u := range b.urls {
		out[i] = u.String()
	}
	return out
}

// Current returns the broker the connection is on; "": it is down.
func (b *Brokers) Current() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.current
}

// Close ends the waits: a client being stopped does not wait out a delay.
// Later dials wait only a few milliseconds (the client is being
// disconnected).
func (b *Brokers) Close() { b.once.Do(func() { close(b.stop) }) }

// Order returns the brokers in the order the next round tries them: the
// one last connected to first, then those after it in the list, wrapping.
func (b *Brokers) Order() []*url.URL {
	b.mu.Lock()
	start := max(b.last, 0)
	b.mu.Unlock()
	return append(slices.Clone(b.urls[start:]), b.urls[:start]...)
}

// Apply sets o's servers and handlers. It wraps o's OnConnect and
// OnConnectionLost handlers, so it is called after they are set.
func (b *Brokers) Apply(o *mqtt.ClientOptions) *mqtt.ClientOptions {
	o.Servers = b.Order()
	// paho's own waits (between rounds of ConnectRetry, and its reconnect
	// backoff) shrink to a millisecond: the wait is BeforeDial's.
	o.SetConnectRetryInterval(time.Millisecond).SetMaxReconnectInterval(time.Millisecond)
	o.SetConnectionAttemptHandler(func(u *url.URL, tc *tls.Config) *tls.Config {
		b.BeforeDial(u)
		return tc
	})
	o.SetReconnectingHandler(func(_ mqtt.Client, co *mqtt.ClientOptions) {
		// Called by paho's reconnect goroutine with the client's own
		// options, just before it reads Servers on the same goroutine.
		co.Servers = b.Order()
	})
	up, lost := o.OnConnect, o.OnConnectionLost
	o.SetOnConnectHandler(func(c mqtt.Client) {
		b.Up()
		if up != nil {
			up(c)
		}
	})
	o.SetConnectionLostHandler(func(c mqtt.Client, err error) {
		b.Down(err)
		if lost != nil {
			lost(c, err)
		}
	})
	return o
}

// BeforeDial is called before each dial, with the broker about to be
// dialled: every dial but the very first waits the next delay.
func (b *Brokers) BeforeDial(u *url.URL) {
	b.mu.Lock()
	wait := time.Duration(-1)
	if b.attempted {
		wait = b.bo.Next()
	}
	b.attempted = true
	b.dialing = max(slices.IndexFunc(b.urls, func(x *url.URL) bool { return x.String() == u.String() }), 0)
	b.mu.Unlock()
	select {
	case <-b.stop:
		time.Sleep(10 * time.Millisecond)
		return
	default:
	}
	if wait >= 0 {
		b.sleep(wait, b.stop)
	}
}

// Up records that the connection is up on the broker dialled last, resets
// the delays and logs a failover.
func (b *Brokers) Up() {
	b.mu.Lock()
	prev, now := b.last, b.dialing
	b.last = now
	b.current = b.urls[now].String()
	b.bo.Reset()
	b.mu.Unlock()
	if prev >= 0 && prev != now {
		b.log.Warn("connection failed over to another broker", "conn", b.conn, "broker", b.urls[now].String(), "from", b.urls[prev].String())
		return
	}
	b.log.Info("connection on broker", "conn", b.conn, "broker", b.urls[now].String())
}

// Down records that the connection is lost.
func (b *Brokers) Down(err error) {
	b.mu.Lock()
	was := b.current
	b.current = ""
	b.mu.Unlock()
	if was != "" && len(b.urls) > 1 {
		b.log.Info("connection lost; trying the brokers in turn", "conn", b.conn, "broker", was, "err", err)
	}
}
