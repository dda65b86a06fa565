package config

import "slices"

// A reload (SIGHUP) takes a configuration file again. Every key is either
// applied in place by the running gateway (AppliedKeys) or needs a
// restart (RestartKeys), and then must be unchanged for the reload to be
// taken: RestartNeeded names the first that changed.

// restartKeys are the configuration keys a running gateway cannot take
// on: a reload that changes one is refused whole, naming it. Every other
// key is applied in place by a reload (appliedKeys).
var restartKeys = []struct {
	key  string
	same func(a, b *Config) bool
}{
	{"site", func(a, b *Config) bool { return a.Site == b.Site }},
	{"gateway", func(a, b *Config) bool { return a.Gateway == b.Gateway }},
	{"data_dir", func(a, b *Config) bool { return a.DataDir == b.DataDir }},
	{"central.broker", func(a, b *Config) bool { return a.Central.Broker == b.Central.Broker }},
	{"central.brokers", func(a, b *Config) bool { return slices.Equal(a.Central.Brokers, b.Central.Brokers) }},
	{"central.username", func(a, b *Config) bool { return a.Central.Username == b.Central.Username }},
	{"central.password", func(a, b *Config) bool { return a.Central.Password == b.Central.Password }},
	{"central.ca_file", func(a, b *Config) bool { return a.Central.CAFile == b.Central.CAFile }},
	{"central.cert_file", func(a, b *Config) bool { return a.Central.CertFile == b.Central.CertFile }},
	{"central.key_file", func(a, b *Config) bool { return a.Central.KeyFile == b.Central.KeyFile }},
	{"central.ack_timeout", func(a, b *Config) bool { return a.Central.AckTimeout == b.Central.AckTimeout }},
	{"http.listen", func(a, b *Config) bool { return a.HTTP.Listen == b.HTTP.Listen }},
	{"http.allowed_origins", func(a, b *Config) bool { return slices.Equal(a.HTTP.AllowedOrigins, b.HTTP.AllowedOrigins) }},
	{"http.token", func(a, b *Config) bool { return a.HTTP.Token == b.HTTP.Token }},
	{"http.tokens", func(a, b *Config) bool { return slices.Equal(a.HTTP.Tokens, b.HTTP.Tokens) }},
	{"http.trust_loopback", func(a, b *Config) bool { return a.HTTP.Loopback() == b.HTTP.Loopback() }},
	{"http.tls_cert_file", func(a, b *Config) bool { return a.HTTP.TLSCertFile == b.HTTP.TLSCertFile }},
	{"http.tls_key_file", func(a, b *Config) bool { return a.HTTP.TLSKeyFile == b.HTTP.TLSKeyFile }},
	{"http.max_conns", func(a, b *Config) bool { return a.HTTP.MaxConns == b.HTTP.MaxConns }},
	{"http.stream_stall", func(a, b *Config) bool { return a.HTTP.StreamStall == b.HTTP.StreamStall }},
	{"log.level", func(a, b *Config) bool { return a.Log.Level == b.Log.Level }},
	{"log.format", func(a, b *Config) bool { return a.Log.Format == b.Log.Format }},
	{"outbox.max_events", func(a, b *Config) bool { return a.Outbox.MaxEvents == b.Outbox.MaxEvents }},
	{"outbox.max_bytes", func(a, b *Config) bool { return a.Outbox.MaxBytes == b.Outbox.MaxBytes }},
	{"outbox.alarm_percent", func(a, b *Config) bool { return a.Outbox.AlarmPercent == b.Outbox.AlarmPercent }},
	{"outbox.redeliver_window", func(a, b *Config) bool { return a.Outbox.RedeliverWindow == b.Outbox.RedeliverWindow }},
}

// appliedKeys are the keys a reload applies in place.
var appliedKeys = []string{
	"central.keys", "central.gap_grace", "central.resync_timeout", "central.lookup_timeout",
	"retention.orders_days", "retention.events_days", "retention.interval",
	"identifiers", "stations",
}

// RestartNeeded returns the first key that differs between old and cfg
// and needs a restart, or "".
func RestartNeeded(old, cfg *Config) string {
	for _, k := range restartKeys {
		if !k.same(old, cfg) {
			return k.key
		}
	}
	return ""
}

// RestartKeys returns the keys a reload cannot apply: changing one needs
// a restart.
func RestartKeys() []string {
	out := make([]string, len(restartKeys))
	for i, k := range restartKeys {
		out[i] = k.key
	}
	return out
}

// AppliedKeys returns the keys a reload applies in place.
func AppliedKeys() []string { return slices.Clone(appliedKeys) }
