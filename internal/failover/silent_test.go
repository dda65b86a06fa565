package failover

import (
	"crypto/tls"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/internal/testenv"
)

// fakeBroker listens on loopback and serves every connection with serve.
func fakeBroker(t *testing.T, serve func(net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return "tcp://" + l.Addr().String()
}

// TestBadEntriesSkipped: the first entry accepts TCP and never answers
// the CONNECT, the second refuses it (CONNACK 5, not authorized): the
// connection moves on past both to the third, a real broker.
func TestBadEntriesSkipped(t *testing.T) {
	m := testenv.NewMosquitto(t)
	silent := fakeBroker(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	refusing := fakeBroker(t, func(c net.Conn) {
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err == nil {
			c.Write([]byte{0x20, 0x02, 0x00, 0x05})
		}
	})
	b, err := New([]string{silent, refusing, m.URL()}, Options{Sleep: (&recorder{}).sleep})
	if err != nil {
		t.Fatal(err)
	}
	c := mqtt.NewClient(b.Apply(mqtt.NewClientOptions().SetClientID("bad-entries").SetConnectTimeout(time.Second).
		SetAutoReconnect(true).SetConnectRetry(true)))
	defer c.Disconnect(0)
	c.Connect()
	waitFor(t, "on the real broker", func() bool { return b.Current() == m.URL() })
}

// TestRefusalDialledOnce: a broker that refuses the CONNECT is dialled once
// per round. paho, its protocol version not set, tries a refused broker
// again with MQTT 3.1, which costs another delay and another dial of a
// broker that will refuse again; the gateway speaks 3.1.1 only.
func TestRefusalDialledOnce(t *testing.T) {
	m := testenv.NewMosquitto(t)
	refusing := fakeBroker(t, func(c net.Conn) {
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err == nil {
			c.Write([]byte{0x20, 0x02, 0x00, 0x05})
		}
	})
	b, err := New([]string{refusing, m.URL()}, Options{Sleep: (&recorder{}).sleep})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var dialled []string
	o := b.Apply(mqtt.NewClientOptions().SetClientID("refusal").SetConnectTimeout(time.Second).
		SetAutoReconnect(true).SetConnectRetry(true))
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
	waitFor(t, "on the real broker", func() bool { return b.Current() == m.URL() })
	mu.Lock()
	defer mu.Unlock()
	if want := []string{refusing, m.URL()}; !slices.Equal(dialled, want) {
		t.Errorf("dialled %q, want %q", dialled, want)
	}
}
