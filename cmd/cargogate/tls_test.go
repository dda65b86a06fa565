package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/testenv"
)

// gatewayACL is the mosquitto ACL block of one gateway, as in
// docs/security.md: with use_identity_as_username the username is the
// certificate's CN, cargogate-{site}-{gateway}. It reads its site's orders
// and head and its own replies, and writes only its own topics.
func gatewayACL(site, gw string) string {
	p := "customs/v1/" + site
	return fmt.Sprintf(`user cargogate-%[1]s-%[2]s
topic read %[3]s/orders
topic read %[3]s/head
topic read %[3]s/gw/%[2]s/replay
topic read %[3]s/gw/%[2]s/lookup/reply
topic read %[3]s/gw/%[2]s/events/ack
topic write %[3]s/gw/%[2]s/resync
topic write %[3]s/gw/%[2]s/lookup
topic write %[3]s/gw/%[2]s/events
topic write %[3]s/gw/%[2]s/status
`, site, gw, p)
}

// centralACL is central's ACL, as in docs/security.md (there as the
// block of user customs-central-{site}; here the lines before any user
// line, which apply to the anonymous clients of the plain listener).
func centralACL(site string) string {
	p := "customs/v1/" + site
	return fmt.Sprintf(`topic write %[1]s/orders
topic write %[1]s/head
topic write %[1]s/gw/+/replay
topic write %[1]s/gw/+/lookup/reply
topic write %[1]s/gw/+/events/ack
topic read %[1]s/gw/+/resync
topic read %[1]s/gw/+/lookup
topic read %[1]s/gw/+/events
topic read %[1]s/gw/+/status
`, p)
}

// tlsSite is a site whose gateway reaches mosquitto over ssl:// with a
// client certificate, on a listener that requires one and applies the
// gateways' ACL. customs-sim has no TLS flags (see `customs-sim --help`),
// so central, the spy and the sentinel publisher use a second, plain
// listener on the same broker, bound to 127.0.0.1, with central's ACL.
type tlsSite struct {
	*site
	ca      *testenv.CA
	sslURL  string
	certDir string
}

func newTLSSite(t *testing.T) *tlsSite {
	t.Helper()
	ts := &tlsSite{site: &site{t: t, dir: t.TempDir()}, certDir: t.TempDir()}
	s := ts.site
	ts.ca = testenv.NewCA(t, ts.certDir, "cargogate-test-ca")
	srvCert, srvKey := ts.ca.Issue(t, "broker", "127.0.0.1")
	gwCert, gwKey := ts.ca.Issue(t, "cargogate-PVG-W-g07")
	aclCentral, aclGateways := filepath.Join(ts.certDir, "central.acl"), filepath.Join(ts.certDir, "gateways.acl")
	if err := os.WriteFile(aclCentral, []byte(centralACL("PVG-W")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(aclGateways, []byte(gatewayACL("PVG-W", "g07")+"\n"+gatewayACL("PVG-W", "g08")), 0o644); err != nil {
		t.Fatal(err)
	}
	var ports []int
	s.broker, ports = testenv.NewMosquittoConfig(t, 2, func(p []int) []string {
		return []string{
			// Run as root, mosquitto drops to its own user before it reads
			// the ACLs and certificates, which sit in the test's private
			// temporary directory; "user root" keeps it (ignored when the
			// tests do not run as root).
			"user root",
			"per_listener_settings true",
			"persistence false",
			"listener " + strconv.Itoa(p[0]) + " 127.0.0.1",
			"allow_anonymous true",
			"acl_file " + aclCentral,
			"listener " + strconv.Itoa(p[1]) + " 127.0.0.1",
			"cafile " + ts.ca.CertFile,
			"certfile " + srvCert,
			"keyfile " + srvKey,
			"require_certificate true",
			"use_identity_as_username true",
			"allow_anonymous false",
			"acl_file " + aclGateways,
		}
	})
	ts.sslURL = "ssl://127.0.0.1:" + strconv.Itoa(ports[1])

	s.scanner, s.gate = testenv.NewPty(t), testenv.NewPty(t)
	s.centralHTTP, s.gwHTTP = freePort(t), freePort(t)
	out, err := exec.Command(bins["customs-sim"], "-key", filepath.Join(s.dir, "central.key"), "-print-pubkey").Output()
	if err != nil {
		t.Fatalf("customs-sim -print-pubkey: %v", err)
	}
	s.centralKey = strings.TrimSpace(string(out))
	s.cfgPath = filepath.Join(s.dir, "cargogate.yaml")
	cfg := fmt.Sprintf(`site: PVG-W
gateway: g07
data_dir: %s
central:
  broker: %s
  ca_file: %s
  cert_file: %s
  key_file: %s
  keys:
    central-sim: %q
  gap_grace: 500ms
  resync_timeout: 5s
http:
  listen: %s
log:
  level: debug
stations:
  - id: gate-3
    role: gate
    scanner: {driver: serial, port: %s, baud: 9600}
    gate:    {driver: serial, port: %s, baud: 9600, pass: "PASS\r\n", stop: "STOP\r\n"}
`, filepath.Join(s.dir, "gw"), ts.sslURL, ts.ca.CertFile, gwCert, gwKey, s.centralKey, s.gwHTTP, s.scanner.Path, s.gate.Path)
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bins["cargogate"], "keys", "--config", s.cfgPath).Output()
	if err != nil {
		t.Fatalf("cargogate keys: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "public_key: "); ok {
			s.gwKey = v
		}
	}
	s.startCentral() // on the plain listener: s.broker.URL() is ports[0]
	s.startGateway()
	return ts
}

// tlsOptions are paho options for the ssl:// listener; certificate and key
// empty: none presented.
func (ts *tlsSite) tlsOptions(clientID, cert, key string) *mqtt.ClientOptions {
	ts.t.Helper()
	pem, err := os.ReadFile(ts.ca.CertFile)
	if err != nil {
		ts.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			ts.t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return mqtt.NewClientOptions().AddBroker(ts.sslURL).SetClientID(clientID).SetTLSConfig(cfg).
		SetAutoReconnect(false).SetConnectTimeout(3 * time.Second)
}

// TestTLSMutualAuth runs a gateway against mosquitto over TLS with client
// certificates required: orders flow in, a scan decides and its event
// reaches central. A client with no certificate, or one from another CA,
// is refused; and the ACL keeps a gateway's certificate to its own topics.
func TestTLSMutualAuth(t *testing.T) {
	ts := newTLSSite(t)
	s := ts.site
	P := func(n int) customs.Subject { return sub(customs.Parcel, s10(n)) }
	head := s.issue(customs.Order{Action: customs.Release, Subject: P(1)},
		customs.Order{Action: customs.Hold, Subject: P(2), HoldID: "H-1", Reason: "inspection"})
	st := s.waitApplied(head, 30*time.Second)
	if !st.Link.Online {
		t.Fatalf("gateway not online over TLS: %+v", st)
	}
	if f := s.scan(s10(1)); f != "PASS" {
		t.Errorf("released parcel over TLS: %s", f)
	}
	if f := s.scan(s10(2)); f != "STOP" {
		t.Errorf("held parcel over TLS: %s", f)
	}
	for deadline := time.Now().Add(10 * time.Second); len(scanEvents(s.events())) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("central has %d scan events over TLS, want 2", len(scanEvents(s.events())))
		}
	}
	// Central's events_ack (amendment 3) gets through the ACL: the events
	// leave the outbox. An ACL without events/ack keeps them there,
	// sent again every ack_timeout.
	for deadline := time.Now().Add(20 * time.Second); s.status().Link.Outbox != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("outbox not emptied over TLS: %d events (central's events_ack denied by the ACL?)", s.status().Link.Outbox)
		}
	}
	if !strings.Contains(s.gw.Output(), "broker="+ts.sslURL) {
		t.Errorf("gateway log does not show the ssl:// broker")
	}

	t.Run("no client certificate", func(t *testing.T) {
		c := mqtt.NewClient(ts.tlsOptions("cargogate-PVG-W-g99", "", ""))
		if tk := c.Connect(); tk.WaitTimeout(5*time.Second) && tk.Error() == nil {
			c.Disconnect(0)
			t.Fatal("a client without a certificate was let in")
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		other := testenv.NewCA(t, t.TempDir(), "rogue-ca")
		cert, key := other.Issue(t, "cargogate-PVG-W-g07")
		c := mqtt.NewClient(ts.tlsOptions("cargogate-PVG-W-g07-rogue", cert, key))
		if tk := c.Connect(); tk.WaitTimeout(5*time.Second) && tk.Error() == nil {
			c.Disconnect(0)
			t.Fatal("a client certificate of another CA was let in")
		}
	})
	t.Run("plain tcp to the TLS listener", func(t *testing.T) {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(strings.Replace(ts.sslURL, "ssl://", "tcp://", 1)).
			SetClientID("plain").SetAutoReconnect(false).SetConnectTimeout(3 * time.Second))
		if tk := c.Connect(); tk.WaitTimeout(5*time.Second) && tk.Error() == nil {
			c.Disconnect(0)
			t.Fatal("a plain-text client was let in on the TLS listener")
		}
	})

	// The ACL: g07's certificate (a stolen one, or a compromised gateway)
	// publishes on g08's events topic and on central's orders topic; the
	// broker drops both. Its own events topic is delivered (control).
	t.Run("ACL", func(t *testing.T) {
		s.t = t
		gwCert, gwKey := filepath.Join(ts.certDir, "cargogate-PVG-W-g07.crt"), filepath.Join(ts.certDir, "cargogate-PVG-W-g07.key")
		mallory := publisher(t, mqttClient(t, ts.tlsOptions("cargogate-PVG-W-g07-mallory", gwCert, gwKey)))
		spy := &recorder{}
		subscribe(t, mqttClient(t, mqtt.NewClientOptions().AddBroker(s.broker.URL()).SetClientID("central-spy")), spy,
			customs.GatewayTopic("PVG-W", "+", customs.LeafEvents))
		before := s.trustStatus()
		mallory(customs.GatewayTopic("PVG-W", "g08", customs.LeafEvents), []byte("not g07's to send"))
		mallory(customs.OrdersTopic("PVG-W"), []byte("not g07's to send"))
		mallory(customs.GatewayTopic("PVG-W", "g07", customs.LeafEvents), []byte("g07's own"))
		// The orders topic: a message central may publish, rejected by the
		// gateway, after mallory's; once it is counted, mallory's would
		// have been too.
		central := publisher(t, mqttClient(t, mqtt.NewClientOptions().AddBroker(s.broker.URL()).SetClientID("central-2")))
		central(customs.OrdersTopic("PVG-W"), []byte("sentinel"))
		after := s.waitTrust("sentinel", func(st trustStatus) bool { return st.Link.Rejected > before.Link.Rejected })
		if after.Link.Rejected != before.Link.Rejected+1 {
			t.Errorf("a gateway's certificate published on central's orders topic: rejected %d → %d", before.Link.Rejected, after.Link.Rejected)
		}
		var got []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			got = got[:0]
			for _, m := range spy.all() {
				if !strings.HasPrefix(string(m.payload), "{") { // not the gateway's own signed events
					got = append(got, m.topic+" "+string(m.payload))
				}
			}
			if len(got) > 0 {
				break
			}
		}
		want := []string{customs.GatewayTopic("PVG-W", "g07", customs.LeafEvents) + " g07's own"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("central received %q, want only %q", got, want)
		}
	})
	s.t = t
	if f := s.scan(s10(1)); f != "PASS" {
		t.Errorf("after the ACL checks: %s", f)
	}
}
