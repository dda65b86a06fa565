package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/sync/envelope"
)

// A fleet configuration: defaults applied, and every wrong key named.
func TestParseConfig(t *testing.T) {
	k1 := envelope.EncodePublicKey(gws["g01"].Public())
	good := "site: PVG-W\nbroker: {url: tcp://10.0.0.5:1883}\ngateways:\n  g01: " + k1 + "\nhttp: {listen: '127.0.0.1:8090'}\n"
	c, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.OfflineAfter != DefaultOfflineAfter || c.OutboxWarn != DefaultOutboxWarn {
		t.Errorf("defaults: offline_after %v outbox_warn %v", c.OfflineAfter, c.OutboxWarn)
	}
	o, err := c.Options()
	if err != nil || !o.Gateways["g01"].Equal(gws["g01"].Public()) || o.OfflineAfter != 5*time.Minute {
		t.Errorf("options %+v, %v", o, err)
	}
	bad := `site: "PVG W"
broker: {url: "http://x"}
gateways:
  "g 1": "AAAA"
central_keys: {c1: "!!"}
offline_after: 10s
http:
  listen: nowhere
  token: short
  tokens: [{name: h, role: scan, token: "0123456789abcdefX"}]
`
	_, err = ParseConfig([]byte(bad))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, key := range []string{"site:", "broker.url:", `gateways["g 1"]: a gateway name`, `gateways["g 1"]: decodes to 3 bytes`, `central_keys["c1"]: not standard base64`,
		"offline_after: must be at least 1m", "http.listen:", "http.token:", "http.tokens[0].role:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error lacks %q:\n%v", key, err)
		}
	}
	if _, err := ParseConfig([]byte(good + "ofline_after: 5m\n")); err == nil || !strings.Contains(err.Error(), "ofline_after") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := ParseConfig([]byte("site: PVG-W\nbroker: {url: tcp://h:1}\nhttp: {listen: ':1'}\n")); err == nil || !strings.Contains(err.Error(), "gateways: at least one") {
		t.Errorf("no gateways: %v", err)
	}
}
