package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// yamlKeys returns every configuration key as reload sees it: the keys of
// each section (central.broker, …), and identifiers and stations whole.
func yamlKeys() []string {
	var out []string
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if f.Type.Kind() != reflect.Struct || name == "identifiers" {
			out = append(out, name)
			continue
		}
		for j := range f.Type.NumField() {
			if sub := f.Type.Field(j); sub.IsExported() {
				out = append(out, name+"."+strings.Split(sub.Tag.Get("yaml"), ",")[0])
			}
		}
	}
	return out
}

// TestReloadKeysClassified checks that every configuration key is either
// applied in place by a reload or needs a restart, and not both: a key
// added to config without a decision here fails.
func TestReloadKeysClassified(t *testing.T) {
	restart := RestartKeys()
	all := yamlKeys()
	for _, k := range all {
		r, a := slices.Contains(restart, k), slices.Contains(AppliedKeys(), k)
		if r == a {
			t.Errorf("%s: restart %v, applied %v: must be exactly one", k, r, a)
		}
	}
	for _, k := range append(restart, AppliedKeys()...) {
		if !slices.Contains(all, k) {
			t.Errorf("%s: classified but not a configuration key", k)
		}
	}
}

// TestRestartNeeded changes each configuration key alone: RestartNeeded
// names exactly the keys that need a restart (including the TLS files,
// which the in-process reload test cannot change without a TLS broker).
func TestRestartNeeded(t *testing.T) {
	base := Config{Central: Central{Keys: map[string]string{"k": "v"}}}
	base.HTTP.AllowedOrigins = []string{"https://a.example"}
	restart := RestartKeys()
	for _, key := range yamlKeys() {
		changed := base
		changed.HTTP.AllowedOrigins = slices.Clone(base.HTTP.AllowedOrigins)
		f := reflect.ValueOf(&changed).Elem()
		for _, name := range strings.Split(key, ".") {
			f = fieldByYAML(f, name)
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Slice:
			f.Set(reflect.Append(reflect.MakeSlice(f.Type(), 0, 1), reflect.Zero(f.Type().Elem())))
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
		case reflect.Pointer: // an optional bool: set it to the opposite of its value in force
			if f.Type().Elem().Kind() != reflect.Bool {
				t.Fatalf("%s: kind %v", key, f.Kind())
			}
			v := false // unset means true (trust_loopback)
			if !f.IsNil() {
				v = !f.Elem().Bool()
			}
			f.Set(reflect.ValueOf(&v))
		case reflect.Struct:
			continue // identifiers: applied in place, not compared
		default:
			t.Fatalf("%s: kind %v", key, f.Kind())
		}
		want := ""
		if slices.Contains(restart, key) {
			want = key
		}
		if got := RestartNeeded(&base, &changed); got != want {
			t.Errorf("%s changed: RestartNeeded %q, want %q", key, got, want)
		}
	}
}

func fieldByYAML(v reflect.Value, name string) reflect.Value {
	for i := range v.NumField() {
		if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == name {
			return v.Field(i)
		}
	}
	panic("no field " + name)
}

// TestReview_ReloadRefusesHTTPKeys: the HTTP keys are read once at start
// (the tokens by the screens, TLS, the connection cap and the stream stall
// by the server): a SIGHUP that changes one must be refused naming it, not
// reported as reloaded while the old value stays in force (an operator
// token removed by a reload would still open the screens).
func TestReview_ReloadRefusesHTTPKeys(t *testing.T) {
	no := false // unset means true
	for key, mut := range map[string]func(c *Config){
		"http.tokens":         func(c *Config) { c.HTTP.Tokens = nil },
		"http.trust_loopback": func(c *Config) { c.HTTP.TrustLoopback = &no },
		"http.tls_cert_file":  func(c *Config) { c.HTTP.TLSCertFile = "/etc/cargogate/other.pem" },
		"http.tls_key_file":   func(c *Config) { c.HTTP.TLSKeyFile = "/etc/cargogate/other.key" },
		"http.max_conns":      func(c *Config) { c.HTTP.MaxConns = 7 },
		"http.stream_stall":   func(c *Config) { c.HTTP.StreamStall = 12345 },
	} {
		old := &Config{HTTP: HTTP{Tokens: []HTTPToken{{Name: "op", Role: "operator", Token: "t0123456789abcdef"}}}}
		cfg := *old
		mut(&cfg)
		if got := RestartNeeded(old, &cfg); got != key {
			t.Errorf("%s changed: RestartNeeded says %q", key, got)
		}
	}
}
