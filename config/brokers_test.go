package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestBrokerURLs: central.brokers is taken as written; central.broker is a
// list of one; an ssl:// list takes the one TLS setting.
func TestBrokerURLs(t *testing.T) {
	base, err := os.ReadFile("../cargogate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	one := "  broker: tcp://127.0.0.1:1883\n"
	if !strings.Contains(string(base), one) {
		t.Fatal("the example file no longer sets central.broker as expected")
	}
	c, err := Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Central.BrokerURLs(); !slices.Equal(got, []string{"tcp://127.0.0.1:1883"}) {
		t.Errorf("central.broker: BrokerURLs() = %q, want a list of one", got)
	}
	list := strings.Replace(string(base), one, "  brokers: [tcp://10.0.0.1:1883, tcp://10.0.0.2:1883, tcp://10.0.0.3:1883]\n", 1)
	c, err = Parse([]byte(list))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Central.BrokerURLs(); !slices.Equal(got, []string{"tcp://10.0.0.1:1883", "tcp://10.0.0.2:1883", "tcp://10.0.0.3:1883"}) {
		t.Errorf("central.brokers: BrokerURLs() = %q", got)
	}
	tls := strings.Replace(string(base), one, "  brokers: [ssl://10.0.0.1:8883, ssl://10.0.0.2:8883]\n", 1)
	tls = strings.Replace(tls, `  ca_file: ""`, `  ca_file: /etc/cargogate/ca.pem`, 1)
	if _, err := Parse([]byte(tls)); err != nil {
		t.Errorf("an ssl:// list with ca_file: %v", err)
	}
	if _, err := Parse([]byte(strings.Replace(tls, "ssl://10.0.0.2:8883", "tcp://10.0.0.2:1883", 1))); err == nil ||
		!strings.Contains(err.Error(), "central.brokers[1]") {
		t.Errorf("ssl:// and tcp:// mixed: %v, want an error naming central.brokers[1]", err)
	}
}
