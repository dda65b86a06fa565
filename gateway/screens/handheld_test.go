package screens

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/scan"
)

// fakeStation stands for a station whose scanner is the handheld driver:
// each read submitted is decided (PASS for codes starting with P) and
// reported to the hub, as station.Handle does, with the read's Ref.
type fakeStation struct {
	h    *Hub
	mu   sync.Mutex
	n    int
	refs []string
}

func (f *fakeStation) Submit(ctx context.Context, r device.Read) error {
	f.mu.Lock()
	f.n++
	n := f.n
	f.refs = append(f.refs, r.Ref)
	f.mu.Unlock()
	go f.h.Decided(scan.Outcome{Kind: "scan", Station: "hh", Code: string(r.Line), Pass: strings.HasPrefix(string(r.Line), "P"),
		EventID: fmt.Sprintf("ev-%d", n), Ref: r.Ref})
	return nil
}

func (f *fakeStation) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

const hhOp = "0123456789abcdef-operator"

func startHandheldHub(t *testing.T, opt Options) (*Hub, string) {
	t.Helper()
	opt.NoLoopback = true
	opt.Tokens = []Credential{{"ops", RoleOperator, hhOp}}
	opt.Stations = []StationInfo{{ID: "hh", Role: "sort", Handheld: true}, {ID: "hh2", Role: "sort", Handheld: true}, {ID: "sort-1", Role: "sort"}}
	h, srv := startHub(t, opt)
	return h, srv.URL
}

// pairDevice pairs a scan device of station st and returns its token.
func pairDevice(t *testing.T, h *Hub, name, st string) string {
	t.Helper()
	now := time.Now()
	code := h.tokens.mint(Who{Name: name, Role: RoleScan, Station: st}, now, time.Minute)
	tok, _, err := h.tokens.redeem(code, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func dialHandheld(t *testing.T, base, st, tok string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/h/"+st+"/ws", bearer(tok))
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dial /h/%s/ws: %v (HTTP %d)", st, err, code)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send sends a scan and returns its answer.
func send(t *testing.T, c *websocket.Conn, id, code string) answerMsg {
	t.Helper()
	b, _ := json.Marshal(scanMsg{Type: "scan", ID: id, Code: code})
	if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	for {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, raw, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for the answer to %s: %v", id, err)
		}
		var a answerMsg
		if strings.Contains(string(raw), `"overview"`) {
			t.Errorf("a handheld got the overview: %.80s", raw)
		}
		if json.Unmarshal(raw, &a) == nil && a.Type == "answer" && a.ID == id {
			return a
		}
	}
}

func status(t *testing.T, method, url string, hdr http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A scan sent again with its id is answered with the first outcome and
// reaches the station once; an id is not reused for another code.
func TestHandheldScanOnce(t *testing.T) {
	h, base := startHandheldHub(t, Options{})
	st := &fakeStation{h: h}
	h.BindHandheld("hh", st)
	c := dialHandheld(t, base, "hh", pairDevice(t, h, "hh-1", "hh"))
	// The overview (every station) is not for a handheld: queued before
	// the answer, it would arrive before it.
	h.pushOverview()
	a := send(t, c, "a1", "P-1")
	if a.Outcome == nil || !a.Outcome.Pass || a.Repeat || a.Outcome.EventID != "ev-1" {
		t.Fatalf("first answer %+v", a)
	}
	again := send(t, c, "a1", "P-1")
	if again.Outcome == nil || !again.Repeat || again.Outcome.EventID != "ev-1" {
		t.Fatalf("repeated answer %+v", again)
	}
	// Another device's id of the same spelling is its own scan.
	c2 := dialHandheld(t, base, "hh", pairDevice(t, h, "hh-2", "hh"))
	if b := send(t, c2, "a1", "S-1"); b.Outcome == nil || b.Outcome.Pass || b.Outcome.EventID != "ev-2" {
		t.Fatalf("the other device's scan %+v", b)
	}
	if r := send(t, c, "a1", "P-2"); r.Refused == "" || r.Outcome != nil {
		t.Errorf("an id reused for another code: %+v", r)
	}
	if r := send(t, c, "bad id!", "P-2"); r.Refused == "" {
		t.Errorf("a bad id: %+v", r)
	}
	if n := st.count(); n != 2 {
		t.Errorf("the station got %d reads, want 2", n)
	}
	if st.refs[0] != "hh-1/a1" || st.refs[1] != "hh-2/a1" {
		t.Errorf("refs %q", st.refs)
	}
}

// A scan at a station whose scanner is not running is refused, and not
// remembered: sent again once it runs, it is decided.
func TestHandheldNoStation(t *testing.T) {
	h, base := startHandheldHub(t, Options{AnswerTimeout: 200 * time.Millisecond})
	c := dialHandheld(t, base, "hh", pairDevice(t, h, "hh-1", "hh"))
	if r := send(t, c, "x1", "P-1"); r.Refused != "no station" {
		t.Fatalf("no station: %+v", r)
	}
	st := &fakeStation{h: h}
	h.BindHandheld("hh", st)
	if r := send(t, c, "x1", "P-1"); r.Outcome == nil || r.Repeat {
		t.Fatalf("sent again: %+v", r)
	}
}

// Each device has its budget: beyond it a scan is refused and reaches no
// station. The connection takes one from it.
func TestHandheldRateLimit(t *testing.T) {
	clock := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	h, base := startHandheldHub(t, Options{ScanRate: 1, ScanBurst: 3, Now: func() time.Time { return clock }})
	st := &fakeStation{h: h}
	h.BindHandheld("hh", st)
	c := dialHandheld(t, base, "hh", pairDevice(t, h, "hh-1", "hh"))
	for i, want := range []string{"", "", "too fast"} {
		if r := send(t, c, fmt.Sprintf("r%d", i), "P-1"); r.Refused != want {
			t.Errorf("scan %d: refused %q, want %q", i, r.Refused, want)
		}
	}
	if n := st.count(); n != 2 {
		t.Errorf("the station got %d reads, want 2", n)
	}
	// Another device has its own budget.
	c2 := dialHandheld(t, base, "hh", pairDevice(t, h, "hh-2", "hh"))
	if r := send(t, c2, "r0", "P-1"); r.Outcome == nil {
		t.Errorf("the other device: %+v", r)
	}
}

// A scan token opens its own station's page and nothing else; revoked,
// its connection is closed.
func TestHandheldBoundToItsStation(t *testing.T) {
	h, base := startHandheldHub(t, Options{})
	tok := pairDevice(t, h, "hh-1", "hh")
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/h/hh", 200}, {"/h/static/handheld.js", 200}, {"/h/static/app.js", 200},
		{"/h/hh2", 403}, {"/h/hh2/ws", 403}, {"/h/sort-1", 404}, {"/station/hh", 403}, {"/ws", 403},
		{"/static/app.js", 403}, {"/api/status", 403}, {"/api/devices", 403},
	} {
		if got := status(t, "GET", base+tc.path, bearer(tok)); got != tc.want {
			t.Errorf("scan token GET %s: %d, want %d", tc.path, got, tc.want)
		}
	}
	if got := status(t, "GET", base+"/h/hh", bearer(hhOp)); got != 403 {
		t.Errorf("operator on the handheld page: %d", got)
	}
	if got := status(t, "GET", base+"/h/hh", nil); got != 401 {
		t.Errorf("no token on the handheld page: %d", got)
	}
	c := dialHandheld(t, base, "hh", tok)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `"hello"`) {
		t.Fatalf("first message %s %v", b, err)
	}
	if got := status(t, "POST", base+"/api/unpair?name=hh-1", bearer(hhOp)); got != 200 {
		t.Fatalf("unpair: %d", got)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Errorf("revoked device's connection ended with %v", err)
			}
			break
		}
	}
	if got := status(t, "GET", base+"/h/hh", bearer(tok)); got != 401 {
		t.Errorf("revoked token: %d", got)
	}
	// Pairing a scan device needs a handheld station.
	if got := status(t, "POST", base+"/api/pair?name=x&role=scan&station=sort-1", bearer(hhOp)); got != 400 {
		t.Errorf("scan device for a fixed station: %d", got)
	}
	if got := status(t, "POST", base+"/api/pair?name=x&role=scan", bearer(hhOp)); got != 400 {
		t.Errorf("scan device without a station: %d", got)
	}
}

// TestFreshPairingNeverReplaces: an unnamed pairing's generated name
// (new=1) is refused when a paired device or a pending link has it, and a
// fresh link is not redeemed over a device paired meanwhile; a named
// pairing still replaces (re-pairing a device).
func TestFreshPairingNeverReplaces(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	tk, _ := newTokens(nil, "")
	dev := Who{Name: "hh-1a2b", Role: RoleScan, Station: "hh"}
	first, _ := tk.redeemOrFail(t, tk.mint(dev, now, time.Minute), now)
	if _, ok := tk.mintCode(dev, now, time.Minute, true); ok {
		t.Fatal("fresh pairing minted over a paired device's name")
	}
	other := Who{Name: "hh-3c4d", Role: RoleScan, Station: "hh"}
	fresh, ok := tk.mintCode(other, now, time.Minute, true)
	if !ok {
		t.Fatal("fresh pairing of an unused name refused")
	}
	if _, ok := tk.mintCode(other, now, time.Minute, true); ok {
		t.Fatal("fresh pairing minted over a pending link's name")
	}
	// The name gets paired by a named link before the fresh one is used.
	tk.redeemOrFail(t, tk.mint(other, now, time.Minute), now)
	if _, _, err := tk.redeem(fresh, now); err == nil {
		t.Fatal("fresh link replaced a device paired meanwhile")
	}
	if _, ok := tk.lookup(first); !ok {
		t.Fatal("the first device lost its token")
	}
	// Named re-pairing still replaces.
	second, _ := tk.redeemOrFail(t, tk.mint(dev, now, time.Minute), now)
	if _, ok := tk.lookup(first); ok {
		t.Fatal("re-paired device kept its old token")
	}
	if _, ok := tk.lookup(second); !ok {
		t.Fatal("re-paired device's new token refused")
	}
}

func (t *tokens) redeemOrFail(tb testing.TB, code string, now time.Time) (string, Who) {
	tb.Helper()
	tok, who, err := t.redeem(code, now)
	if err != nil {
		tb.Fatal(err)
	}
	return tok, who
}
