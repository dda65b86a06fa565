package fleet

import (
	"strings"
	"testing"

	"github.com/cargogate/cargogate/sync/envelope"
)

// The http section is checked as a gateway's is: a bad allowed origin (else
// silently dropped: the name it was meant for is then refused), the same
// name or the same token twice, a certificate that does not load; each
// error names its key.
func TestParseConfigHTTP(t *testing.T) {
	k1 := envelope.EncodePublicKey(gws["g01"].Public())
	cfg := "site: PVG-W\nbroker: {url: tcp://10.0.0.5:1883}\ngateways:\n  g01: " + k1 + `
http:
  listen: '127.0.0.1:8090'
  allowed_origins: ["fleet.pvg-w.example", "https://ok.example"]
  tokens:
    - {name: wall, role: screens, token: "0123456789abcdef0123"}
    - {name: wall, role: screens, token: "abcdef0123456789abcd"}
    - {name: sup, role: operator, token: "0123456789abcdef0123"}
  tls_cert_file: /nonexistent/cert.pem
  tls_key_file: /nonexistent/key.pem
`
	_, err := ParseConfig([]byte(cfg))
	if err == nil {
		t.Fatal("bad http section accepted")
	}
	for _, key := range []string{"http.allowed_origins[0]:", "http.tokens[1].name: duplicate", "http.tokens[2].token: the same token", "http.tls_cert_file: cannot load"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error lacks %q:\n%v", key, err)
		}
	}
	if strings.Contains(err.Error(), "allowed_origins[1]") {
		t.Errorf("a good origin refused:\n%v", err)
	}
}

// The same public key pasted for two gateways (a copy-paste slip: the
// second then never verifies and looks dead) is named.
func TestParseConfigSameKeyTwice(t *testing.T) {
	k1 := envelope.EncodePublicKey(gws["g01"].Public())
	cfg := "site: PVG-W\nbroker: {url: tcp://10.0.0.5:1883}\ngateways:\n  g01: " + k1 + "\n  g02: " + k1 + "\nhttp: {listen: '127.0.0.1:8090'}\n"
	_, err := ParseConfig([]byte(cfg))
	if err == nil || !strings.Contains(err.Error(), `gateways["g02"]: the same key as gateways["g01"]`) {
		t.Fatalf("the same key twice: %v", err)
	}
}
