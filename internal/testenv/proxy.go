package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy is a fault-injecting TCP proxy in front of one upstream (Shopify's
// toxiproxy, used as a library): it can cut every connection, and add
// toxics that delay, reset, slice packets mid-way or stop data after some
// bytes. Its address stays the same across Cut and Restore.
type Proxy struct {
	t testing.TB
	p *toxiproxy.Proxy
}

// NewProxy starts a proxy on a free 127.0.0.1 port forwarding to upstream
// (host:port). It is stopped at test cleanup.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	// Toxics log through zerolog's global logger; keep the test log quiet.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "faults", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("proxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{t: t, p: p}
}

// Addr is the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.p.Listen }

// URL is the proxy's address as an MQTT broker URL.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// Cut closes every proxied connection and refuses new ones until Restore.
func (p *Proxy) Cut() { p.p.Stop() }

// Restore accepts connections again after Cut, on the same address.
func (p *Proxy) Restore() {
	p.t.Helper()
	if err := p.p.Start(); err != nil && err != toxiproxy.ErrProxyAlreadyStarted {
		p.t.Fatalf("proxy: restore: %v", err)
	}
}

// Toxic adds a toxic, e.g. Toxic("latency", "downstream", `{"latency":200,"jitter":50}`).
// Types: latency, bandwidth, slow_close, timeout, reset_peer, slicer,
// limit_data (see toxiproxy's README). stream is "upstream" (towards the
// broker) or "downstream". It returns the toxic's name for RemoveToxic.
func (p *Proxy) Toxic(typ, stream, attrs string) string {
	p.t.Helper()
	name := fmt.Sprintf("%s_%s", typ, stream)
	body := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		p.t.Fatalf("proxy: toxic %s: %v", body, err)
	}
	return name
}

// RemoveToxics removes every toxic.
func (p *Proxy) RemoveToxics() { p.p.Toxics.ResetToxics(context.Background()) }
