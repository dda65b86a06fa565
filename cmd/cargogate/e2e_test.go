package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/cargogate/cargogate/sync/envelope"
)

// bins are the built commands, shared by the end-to-end tests.
var bins map[string]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cargogate-bin")
	if err != nil {
		panic(err)
	}
	bins, err = testenv.Build(dir, "./cmd/cargogate", "./cmd/customs-sim")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// s10 makes a valid UPU S10 parcel id.
func s10(n int) string {
	d := fmt.Sprintf("%08d", n%100000000)
	w := []int{8, 6, 4, 2, 3, 5, 9, 7}
	sum := 0
	for i := range 8 {
		sum += int(d[i]-'0') * w[i]
	}
	c := 11 - sum%11
	switch c {
	case 10:
		c = 0
	case 11:
		c = 5
	}
	return "RR" + d + strconv.Itoa(c) + "CN"
}

// sscc makes a valid 18-digit SSCC.
func sscc(n int) string {
	body := fmt.Sprintf("1069%013d", n)
	sum := 0
	for i := range 17 {
		w := 1
		if (17-i)%2 == 1 {
			w = 3
		}
		sum += int(body[i]-'0') * w
	}
	return body + strconv.Itoa((10-sum%10)%10)
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// site is one test site: mosquitto, customs-sim and one gateway with a
// gate station on two ptys.
type site struct {
	t           testing.TB
	dir         string
	broker      *testenv.Mosquitto
	centralHTTP string
	gwHTTP      string
	cfgPath     string
	centralKey  string // base64 public
	gwKey       string // base64 public
	scanner     *testenv.Pty
	gate        *testenv.Pty
	central     *testenv.Proc
	gw          *testenv.Proc
	https       bool // the gateway serves HTTPS (http.tls_cert_file)
}

func newSite(t testing.TB, brokerConf ...string) *site {
	t.Helper()
	return newSiteRole(t, "gate", "", brokerConf...)
}

// newSiteRole makes a site whose one station has role and the extra
// identifiers YAML (indented under identifiers:).
func newSiteRole(t testing.TB, role, identYAML string, brokerConf ...string) *site {
	t.Helper()
	return newSiteHTTP(t, role, identYAML, "", brokerConf...)
}

// testOpToken is every test site's operator token (http.token); the test
// clients send it as the bearer token, the CLI as CARGOGATE_TOKEN.
const testOpToken = "test-operator-token-0123456789"

// authGet GETs url with the operator's bearer token.
func authGet(url string) (*http.Response, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testOpToken)
	return http.DefaultClient.Do(req)
}

// newSiteHTTP is newSiteRole with further keys under http: (indented).
func newSiteHTTP(t testing.TB, role, identYAML, httpYAML string, brokerConf ...string) *site {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), https: strings.Contains(httpYAML, "tls_cert_file")}
	s.broker = testenv.NewMosquitto(t, brokerConf...)
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
  keys:
    central-sim: %q
  gap_grace: 500ms
  resync_timeout: 5s
http:
  listen: %s
  token: %s
%s
log:
  level: debug
identifiers:
  parcel_patterns: ['^LP\d{14}$']
%s
stations:
  - id: gate-3
    role: %s
    scanner: {driver: serial, port: %s, baud: 9600}
    gate:    {driver: serial, port: %s, baud: 9600, pass: "PASS\r\n", stop: "STOP\r\n"}
`, filepath.Join(s.dir, "gw"), s.broker.URL(), s.centralKey, s.gwHTTP, testOpToken, httpYAML, identYAML, role, s.scanner.Path, s.gate.Path)
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
	if s.gwKey == "" {
		t.Fatalf("cargogate keys printed no public key: %q", out)
	}
	s.startCentral()
	s.startGateway()
	return s
}

func (s *site) startCentral() {
	s.central = testenv.Start(s.t, "customs-sim", bins["customs-sim"], "-site", "PVG-W", "-broker", s.broker.URL(),
		"-db", filepath.Join(s.dir, "central.db"), "-key", filepath.Join(s.dir, "central.key"), "-kid", "central-sim",
		"-gateway-key", "PVG-W/g07="+s.gwKey, "-http", s.centralHTTP)
	s.waitHTTP(s.centralHTTP + "/head")
	// Orders issued before central is on the broker reach the gateway only
	// by resync; tests that watch the orders topic need them live.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var st struct {
			Connected bool `json:"connected"`
		}
		getJSON(s.t, "http://"+s.centralHTTP+"/stats", &st)
		if st.Connected {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatal("central never connected to the broker")
		}
	}
}

func (s *site) startGateway() {
	s.gw = testenv.Start(s.t, "cargogate", bins["cargogate"], "run", "--config", s.cfgPath)
	if s.https {
		s.waitHTTPS(s.gwHTTP + "/api/status")
		return
	}
	s.waitHTTP(s.gwHTTP + "/api/status")
}

func (s *site) waitHTTP(addr string) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := authGet("http://" + addr); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s not answering", addr)
}

// waitHTTPS waits for the gateway's HTTPS server (its certificate is
// checked by the tests that are about it).
func (s *site) waitHTTPS(addr string) {
	s.t.Helper()
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "https://"+addr, nil)
		req.Header.Set("Authorization", "Bearer "+testOpToken)
		if r, err := cl.Do(req); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
	}
	s.t.Fatalf("https://%s not answering", addr)
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	r, err := authGet(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, r.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

// issue sends orders to central and returns the last seq.
func (s *site) issue(orders ...customs.Order) uint64 {
	s.t.Helper()
	body, _ := json.Marshal(orders)
	r, err := http.Post("http://"+s.centralHTTP+"/orders", "application/json", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		s.t.Fatalf("POST /orders: %s %s", r.Status, b)
	}
	var res struct{ First, Last uint64 }
	if err := json.Unmarshal(b, &res); err != nil {
		s.t.Fatal(err)
	}
	return res.Last
}

func (s *site) centralHead() uint64 {
	var h struct {
		Seq  uint64 `json:"seq"`
		Head uint64 `json:"head"`
	}
	getJSON(s.t, "http://"+s.centralHTTP+"/head", &h)
	return max(h.Seq, h.Head)
}

type gwStatus struct {
	Link struct {
		Online    bool   `json:"online"`
		Applied   uint64 `json:"applied_seq"`
		Head      uint64 `json:"head_seq"`
		Outbox    int    `json:"outbox"`
		Rejected  uint64 `json:"rejected"`
		Conflicts uint64 `json:"orders_conflict"`
	} `json:"link"`
}

func (s *site) status() gwStatus {
	var st gwStatus
	getJSON(s.t, "http://"+s.gwHTTP+"/api/status", &st)
	return st
}

// waitApplied waits until the gateway applied every seq up to seq.
func (s *site) waitApplied(seq uint64, within time.Duration) gwStatus {
	s.t.Helper()
	deadline := time.Now().Add(within)
	var st gwStatus
	for time.Now().Before(deadline) {
		st = s.status()
		if st.Link.Applied >= seq {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("gateway applied_seq %d, want %d (status %+v)", st.Link.Applied, seq, st)
	return st
}

func (s *site) events() []customs.Event {
	var evs []customs.Event
	getJSON(s.t, "http://"+s.centralHTTP+"/events?gateway=g07", &evs)
	return evs
}

func scanEvents(evs []customs.Event) []customs.Event {
	var out []customs.Event
	for _, e := range evs {
		if e.Kind == customs.EventScan {
			out = append(out, e)
		}
	}
	return out
}

// scan writes a code into the scanner and returns the gate frame read.
func (s *site) scan(code string) string {
	s.t.Helper()
	s.scanner.Write(s.t, code+"\r\n")
	f := s.gate.ReadFrame(10*time.Second, "PASS\r\n", "STOP\r\n")
	if f == "" {
		s.t.Fatalf("scan %q: no gate frame", code)
	}
	return strings.TrimSpace(f)
}

func sub(k customs.Kind, id string) customs.Subject { return customs.Subject{Kind: k, ID: id} }

// forge publishes an orders message for seq, signed by key under kid.
func forge(t testing.TB, brokerURL string, kid string, key ed25519.PrivateKey, o customs.Order, tamper bool) {
	t.Helper()
	payload, _ := json.Marshal(customs.Orders{Type: customs.TypeOrders, Site: "PVG-W", Orders: []customs.Order{o}})
	msg, err := envelope.Signer{Kid: kid, Key: key}.SealBytes(payload)
	if err != nil {
		t.Fatal(err)
	}
	if tamper {
		var env envelope.Envelope
		json.Unmarshal(msg, &env)
		o.Subject.ID = s10(999)
		other, _ := json.Marshal(customs.Orders{Type: customs.TypeOrders, Site: "PVG-W", Orders: []customs.Order{o}})
		env.Payload = b64(other) // signature is over the original bytes
		msg, _ = json.Marshal(env)
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("forger"))
	if tk := c.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("forger connect: %v", tk.Error())
	}
	defer c.Disconnect(100)
	tk := c.Publish(customs.OrdersTopic("PVG-W"), 1, false, msg)
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("forger publish: %v", tk.Error())
	}
}

func TestEndToEnd(t *testing.T) {
	s := newSite(t)
	now := time.Now().UTC()
	P := func(n int) customs.Subject { return sub(customs.Parcel, s10(n)) }
	rel := func(sj customs.Subject) customs.Order {
		return customs.Order{Action: customs.Release, Subject: sj, ExpiresAt: now.Add(24 * time.Hour), Office: "2244"}
	}
	bag1, bag2, uld := sub(customs.Bag, sscc(1)), sub(customs.Bag, sscc(2)), sub(customs.ULD, "AKE12345MU")
	head := s.issue(
		rel(P(1)),
		rel(P(2)), customs.Order{Action: customs.Hold, Subject: P(2), HoldID: "h1", Reason: "inspection"},
		rel(P(3)), customs.Order{Action: customs.Cancel, Subject: P(3)},
		customs.Order{Action: customs.Release, Subject: P(5), ExpiresAt: now.Add(-time.Hour)},
		rel(P(6)), rel(P(7)), customs.Order{Action: customs.Link, Subject: bag1, Children: []customs.Subject{P(6), P(7)}},
		rel(P(8)), rel(P(9)), customs.Order{Action: customs.Hold, Subject: P(9), HoldID: "dnl-1", Reason: "do_not_load"},
		customs.Order{Action: customs.Link, Subject: bag2, Children: []customs.Subject{P(8), P(9)}},
		customs.Order{Action: customs.Link, Subject: uld, Children: []customs.Subject{bag2}},
		rel(sub(customs.Parcel, "LP00000000000011")),
	)
	// Forged releases of P(10): an unknown key, and a known kid over other bytes.
	// Sent once the gateway has subscribed (link online): a message published
	// before its first subscription never reaches it, and unlike the orders
	// no resync brings a forged one back.
	for deadline := time.Now().Add(30 * time.Second); !s.status().Link.Online; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("gateway not online")
		}
	}
	_, rogue, _ := ed25519.GenerateKey(rand.Reader)
	forge(t, s.broker.URL(), "central-sim", rogue, customs.Order{Seq: head + 1, Action: customs.Release, Subject: P(10)}, false)
	forge(t, s.broker.URL(), "rogue", rogue, customs.Order{Seq: head + 2, Action: customs.Release, Subject: P(10)}, false)
	st := s.waitApplied(head, 30*time.Second)
	for deadline := time.Now().Add(10 * time.Second); st.Link.Rejected < 2 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		st = s.status()
	}
	if st.Link.Rejected < 2 {
		t.Fatalf("forged messages not rejected: %+v", st)
	}

	cases := []struct {
		code, frame, reason string
	}{
		{s10(1), "PASS", "released"},
		{"]C0" + s10(1), "PASS", "released"},
		{s10(2), "STOP", "held:inspection"},
		{s10(3), "STOP", "cancelled"},
		{s10(4), "STOP", "unknown"},
		{s10(5), "STOP", "expired"},
		{s10(1)[:10] + "9CN", "STOP", "invalid_code"},
		{"hello world!", "STOP", "invalid_code"},
		{sscc(1), "PASS", "released"},
		{"00" + sscc(1), "PASS", "released"},
		{"AKE12345MU", "STOP", "contents"},
		{sscc(2), "STOP", "contents"},
		{s10(8), "PASS", "released"},
		{s10(9), "STOP", "held:do_not_load"},
		{s10(10), "STOP", "unknown"},
		{"LP00000000000011", "PASS", "released"},
	}
	if strings.HasSuffix(cases[6].code, s10(1)[10:]) {
		t.Fatal("test bug: the bad check digit is the good one")
	}
	for _, c := range cases {
		if got := s.scan(c.code); got != c.frame {
			t.Errorf("scan %q: gate got %s, want %s", c.code, got, c.frame)
		}
	}
	// Central receives one signed event per scan, with the right reason.
	var evs []customs.Event
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		evs = scanEvents(s.events())
		if len(evs) >= len(cases) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(evs) != len(cases) {
		t.Fatalf("central has %d scan events, want %d", len(evs), len(cases))
	}
	for i, c := range cases {
		e := evs[i]
		wantDecision := strings.ToLower(c.frame)
		if e.Reason != c.reason || e.Decision != wantDecision || e.Station != "gate-3" || e.Role != "gate" {
			t.Errorf("event %d for %q: decision %s reason %s station %s, want %s %s", i, c.code, e.Decision, e.Reason, e.Station, wantDecision, c.reason)
		}
		if e.ID == "" || e.AppliedSeq == nil || *e.AppliedSeq < head {
			t.Errorf("event %d: id %q applied_seq %v", i, e.ID, e.AppliedSeq)
		}
	}
	if got := s.status(); got.Link.Applied != head {
		t.Errorf("forged orders moved applied_seq to %d (head %d)", got.Link.Applied, head)
	}
}

func b64(b []byte) string {
	return base64Std.EncodeToString(b)
}

var base64Std = base64.StdEncoding
