package failover

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/internal/testenv"
)

// TestTLSServerNamePerBroker: two ssl:// brokers whose certificates name
// different hosts (A: localhost only, B: 127.0.0.1 only), one TLS setting
// (the CA) for both, as central.brokers has it. The connection verifies
// each broker against its own host: it connects to A, and after A dies to
// B. A server name shared by the list (the first broker's) would refuse B.
func TestTLSServerNamePerBroker(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, dir, "failover-test-ca")
	broker := func(name, host string) (*testenv.Mosquitto, string) {
		cert, key := ca.Issue(t, "broker-"+name, host)
		m, ports := testenv.NewMosquittoConfig(t, 2, func(p []int) []string {
			return []string{
				// mosquitto run as root drops to its own user, which cannot
				// read the test's private directory: keep root.
				"user root", "allow_anonymous true", "persistence false",
				fmt.Sprintf("listener %d 127.0.0.1", p[0]),
				fmt.Sprintf("listener %d 127.0.0.1", p[1]),
				"cafile " + ca.CertFile, "certfile " + cert, "keyfile " + key,
			}
		})
		return m, fmt.Sprintf("ssl://%s:%d", host, ports[1])
	}
	a, aURL := broker("a", "localhost")
	_, bURL := broker("b", "127.0.0.1")
	pem, err := os.ReadFile(filepath.Clean(ca.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	b, err := New([]string{aURL, bURL}, Options{Sleep: (&recorder{}).sleep})
	if err != nil {
		t.Fatal(err)
	}
	o := b.Apply(mqtt.NewClientOptions().SetClientID("tls-names").SetConnectTimeout(2 * time.Second).
		SetAutoReconnect(true).SetConnectRetry(true).SetKeepAlive(2 * time.Second).
		SetTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}))
	c := mqtt.NewClient(o)
	defer c.Disconnect(0)
	c.Connect()
	waitFor(t, "on A ("+aURL+")", func() bool { return b.Current() == aURL })
	a.Kill()
	waitFor(t, "on B ("+bURL+")", func() bool { return b.Current() == bURL })
}
