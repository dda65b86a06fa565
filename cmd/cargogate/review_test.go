package main

import (
	"testing"

	"github.com/cargogate/cargogate/config"
)

// TestReview_ReloadRefusesHTTPKeys: the HTTP keys are read once at start
// (the tokens by the screens, TLS, the connection cap and the stream stall
// by the server): a SIGHUP that changes one must be refused naming it, not
// reported as reloaded while the old value stays in force (an operator
// token removed by a reload would still open the screens).
func TestReview_ReloadRefusesHTTPKeys(t *testing.T) {
	no := false // unset means true
	for key, mut := range map[string]func(c *config.Config){
		"http.tokens":         func(c *config.Config) { c.HTTP.Tokens = nil },
		"http.trust_loopback": func(c *config.Config) { c.HTTP.TrustLoopback = &no },
		"http.tls_cert_file":  func(c *config.Config) { c.HTTP.TLSCertFile = "/etc/cargogate/other.pem" },
		"http.tls_key_file":   func(c *config.Config) { c.HTTP.TLSKeyFile = "/etc/cargogate/other.key" },
		"http.max_conns":      func(c *config.Config) { c.HTTP.MaxConns = 7 },
		"http.stream_stall":   func(c *config.Config) { c.HTTP.StreamStall = 12345 },
	} {
		old := &config.Config{HTTP: config.HTTP{Tokens: []config.HTTPToken{{Name: "op", Role: "operator", Token: "t0123456789abcdef"}}}}
		cfg := *old
		mut(&cfg)
		if got := restartNeeded(old, &cfg); got != key {
			t.Errorf("%s changed: restartNeeded says %q", key, got)
		}
	}
}
