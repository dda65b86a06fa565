package screens

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/device"
	"github.com/cargogate/cargogate/gateway/scan"
)

// startHub runs a hub over a real loopback HTTP server until the test ends.
func startHub(t testing.TB, opt Options) (*Hub, *httptest.Server) {
	t.Helper()
	if opt.Stations == nil {
		opt.Stations = []StationInfo{{ID: "gate-3", Role: "gate", Gate: true}, {ID: "sort-1", Role: "sort"}}
	}
	h := New(opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return h, srv
}

func wsURL(srv *httptest.Server, query string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws" + query
}

// dial opens a screen's WebSocket and reads its hello and first overview.
func dial(t testing.TB, srv *httptest.Server, query string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, query), hdr)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", query, err, code)
	}
	t.Cleanup(func() { c.Close() })
	for _, want := range []string{"hello", "overview"} {
		if m := readMsg(t, c); m.Type != want {
			t.Fatalf("message %q, want %q", m.Type, want)
		}
	}
	return c
}

type msg struct {
	Type     string          `json:"type"`
	Outcome  scan.Outcome    `json:"outcome"`
	Station  json.RawMessage `json:"station"` // an id, or in a hello the station
	Device   string          `json:"device"`
	Overview Overview        `json:"overview"`
	Recent   []scan.Outcome
}

func readMsg(t testing.TB, c *websocket.Conn) msg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// next reads until a message of type typ.
func next(t testing.TB, c *websocket.Conn, typ string) msg {
	t.Helper()
	for {
		if m := readMsg(t, c); m.Type == typ {
			return m
		}
	}
}

func TestGuard(t *testing.T) {
	const opTok, scTok, scanTok = "0123456789abcdef-operator", "0123456789abcdef-screens", "0123456789abcdef-scan"
	creds := []Credential{{"ops", RoleOperator, opTok}, {"wall", RoleScreens, scTok}, {"hand-1", RoleScan, scanTok}}
	cases := []struct {
		name, method, target, remote, host, cookie, bearer string
		noLoopback                                         bool
		want                                               int
	}{
		{name: "loopback", target: "/", remote: "127.0.0.1:5000", want: 200},
		{name: "loopback is operator", target: "/lookup", remote: "127.0.0.1:5000", want: 200},
		{name: "loopback v6", target: "/api/status", remote: "[::1]:5000", want: 200},
		{name: "loopback not trusted", target: "/", remote: "127.0.0.1:5000", noLoopback: true, want: 401},
		{name: "loopback not trusted, token", target: "/api/backup", remote: "127.0.0.1:5000", noLoopback: true, bearer: opTok, want: 200},
		{name: "rebinding host", target: "/", remote: "127.0.0.1:5000", host: "evil.example:8080", want: 421},
		{name: "allowed origin host", target: "/", remote: "127.0.0.1:5000", host: "screens.lan:8080", want: 200},
		{name: "ip host", target: "/supervisor", remote: "127.0.0.1:5000", host: "10.1.2.3:8080", want: 200},
		{name: "lan, no token given", target: "/", remote: "10.0.0.9:5000", want: 401},
		{name: "lan, token in url refused", target: "/station/gate-3?token=" + opTok, remote: "10.0.0.9:5000", want: 400},
		{name: "lan, token in url for the api refused", target: "/api/status?token=" + opTok, remote: "10.0.0.9:5000", want: 400},
		{name: "lan, token in url for the websocket refused", target: "/ws?token=" + scTok, remote: "10.0.0.9:5000", want: 400},
		{name: "lan, token in url with a good cookie refused", target: "/?token=x", remote: "10.0.0.9:5000", cookie: scTok, want: 400},
		{name: "lan, screens cookie: station page", target: "/station/gate-3", remote: "10.0.0.9:5000", cookie: scTok, want: 200},
		{name: "lan, screens cookie: status", target: "/api/status", remote: "10.0.0.9:5000", cookie: scTok, want: 200},
		{name: "lan, screens cookie: lookup", target: "/lookup", remote: "10.0.0.9:5000", cookie: scTok, want: 403},
		{name: "lan, screens cookie: inspect", target: "/api/inspect?code=x", remote: "10.0.0.9:5000", cookie: scTok, want: 403},
		{name: "lan, screens cookie: backup", target: "/api/backup?file=orders.db", remote: "10.0.0.9:5000", cookie: scTok, want: 403},
		{name: "lan, screens bearer: pairing", method: "POST", target: "/api/pair?name=x", remote: "10.0.0.9:5000", bearer: scTok, want: 403},
		{name: "lan, wrong cookie", target: "/", remote: "10.0.0.9:5000", cookie: "x", want: 401},
		{name: "lan, operator bearer", target: "/api/overview", remote: "10.0.0.9:5000", bearer: opTok, want: 200},
		{name: "lan, operator bearer: backup", target: "/api/backup?file=orders.db", remote: "10.0.0.9:5000", bearer: opTok, want: 200},
		{name: "lan, operator bearer: lookup", target: "/lookup", remote: "10.0.0.9:5000", bearer: opTok, want: 200},
		{name: "lan, wrong bearer", target: "/api/overview", remote: "10.0.0.9:5000", bearer: opTok + "x", want: 401},
		{name: "lan, scan token: pages", target: "/", remote: "10.0.0.9:5000", bearer: scanTok, want: 403},
		{name: "lan, scan token: status", target: "/api/status", remote: "10.0.0.9:5000", bearer: scanTok, want: 403},
		{name: "lan, pairing link without a code", target: "/pair?code=nope", remote: "10.0.0.9:5000", want: 401},
		{name: "unknown station", target: "/station/nope", remote: "127.0.0.1:5000", want: 404},
		{name: "static", target: "/static/app.js", remote: "127.0.0.1:5000", want: 200},
	}
	backup := Route{Pattern: "GET /api/backup", Need: NeedOperate, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := New(Options{Tokens: creds, AllowedOrigins: []string{"http://screens.lan:8080"}, NoLoopback: c.noLoopback,
				Stations: []StationInfo{{ID: "gate-3", Role: "gate", Gate: true}}, Routes: []Route{backup}})
			method := c.method
			if method == "" {
				method = "GET"
			}
			r := httptest.NewRequest(method, c.target, nil)
			r.RemoteAddr = c.remote
			r.Host = "127.0.0.1:8080"
			if c.host != "" {
				r.Host = c.host
			}
			if c.cookie != "" {
				r.AddCookie(&http.Cookie{Name: tokenCookie, Value: c.cookie})
			}
			if c.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+c.bearer)
			}
			w := httptest.NewRecorder()
			h.Handler().ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("%s: HTTP %d, want %d: %s", c.target, w.Code, c.want, w.Body)
			}
			if len(w.Result().Cookies()) != 0 {
				t.Errorf("a cookie set outside pairing: %v", w.Result().Cookies())
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("no CSP: %q", csp)
			}
		})
	}
}

// TestPairing mints a one-time pairing link as the operator, opens it as
// a screen (a cookie, the code gone from the address), and checks that
// the link works once, the cookie's flags, what the paired screen may
// open, that the pairing outlives a restart, and revocation.
func TestPairing(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tlsOn], func(t *testing.T) {
			const opTok = "0123456789abcdef-operator"
			file := filepath.Join(t.TempDir(), "paired.json")
			opt := Options{Tokens: []Credential{{"ops", RoleOperator, opTok}}, PairedFile: file, NoLoopback: true,
				Stations: []StationInfo{{ID: "gate-3", Role: "gate", Gate: true}}}
			h := New(opt)
			ctx, cancel := context.WithCancel(context.Background())
			go h.Run(ctx)
			defer cancel()
			srv := httptest.NewUnstartedServer(h.Handler())
			if tlsOn {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			cl := srv.Client()
			cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			do := func(method, path, bearer string, cookie *http.Cookie) *http.Response {
				t.Helper()
				req, _ := http.NewRequest(method, srv.URL+path, nil)
				if bearer != "" {
					req.Header.Set("Authorization", "Bearer "+bearer)
				}
				if cookie != nil {
					req.AddCookie(cookie)
				}
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			// Minting needs the operator.
			if r := do("POST", "/api/pair?name=wall-1", "", nil); r.StatusCode != 401 {
				t.Fatalf("mint without a token: %d", r.StatusCode)
			}
			req, _ := http.NewRequest("POST", srv.URL+"/api/pair?name=wall-1&next=/station/gate-3", nil)
			req.Header.Set("Authorization", "Bearer "+opTok)
			resp, err := cl.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("mint: %v %v", err, resp)
			}
			var minted struct{ Link, Role string }
			json.NewDecoder(resp.Body).Decode(&minted)
			resp.Body.Close()
			if !strings.HasPrefix(minted.Link, "/pair?code=") || minted.Role != RoleScreens {
				t.Fatalf("minted %+v", minted)
			}
			r := do("GET", minted.Link, "", nil)
			if r.StatusCode != 303 || r.Header.Get("Location") != "/station/gate-3" {
				t.Fatalf("pairing: %d to %q", r.StatusCode, r.Header.Get("Location"))
			}
			if hsts := r.Header.Get("Strict-Transport-Security"); (hsts != "") != tlsOn {
				t.Errorf("HSTS %q with TLS %v", hsts, tlsOn)
			}
			ck := r.Cookies()
			if len(ck) != 1 || ck[0].Name != tokenCookie || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode ||
				ck[0].Secure != tlsOn || ck[0].MaxAge <= 0 || strings.Contains(minted.Link, ck[0].Value) {
				t.Fatalf("cookie %+v", ck)
			}
			cookie := &http.Cookie{Name: tokenCookie, Value: ck[0].Value}
			if r := do("GET", minted.Link, "", nil); r.StatusCode != 401 || len(r.Cookies()) != 0 {
				t.Fatalf("the link worked twice: %d", r.StatusCode)
			}
			for path, want := range map[string]int{"/station/gate-3": 200, "/api/overview": 200, "/lookup": 403, "/api/inspect?code=x": 403} {
				if r := do("GET", path, "", cookie); r.StatusCode != want {
					t.Errorf("paired screen on %s: %d, want %d", path, r.StatusCode, want)
				}
			}
			if r := do("POST", "/api/pair?name=other", "", cookie); r.StatusCode != 403 {
				t.Errorf("a screen minted a pairing link: %d", r.StatusCode)
			}
			// The pairing outlives a restart of the gateway.
			h2 := New(opt)
			if h2.Err() != nil {
				t.Fatal(h2.Err())
			}
			if who, ok := h2.tokens.lookup(cookie.Value); !ok || who.Name != "wall-1" || who.Role != RoleScreens {
				t.Fatalf("after a restart: %+v %v", who, ok)
			}
			if b, _ := os.ReadFile(file); strings.Contains(string(b), cookie.Value) {
				t.Fatal("the token itself is on disk")
			}
			if r := do("POST", "/api/unpair?name=wall-1", opTok, nil); r.StatusCode != 200 {
				t.Fatalf("unpair: %d", r.StatusCode)
			}
			if r := do("GET", "/api/overview", "", cookie); r.StatusCode != 401 {
				t.Fatalf("revoked screen: %d", r.StatusCode)
			}
		})
	}
}

// TestPairingLinkExpires: a link not opened in time is refused.
func TestPairingLinkExpires(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	tk, _ := newTokens(nil, "")
	code := tk.mint(Who{Name: "wall-1", Role: RoleScreens}, now, time.Minute)
	if _, _, err := tk.redeem(code, now.Add(2*time.Minute)); err == nil {
		t.Fatal("an expired pairing link worked")
	}
	code = tk.mint(Who{Name: "wall-1", Role: RoleScreens}, now, time.Minute)
	if _, _, err := tk.redeem(code+"x", now); err == nil {
		t.Fatal("a wrong code worked")
	}
	if _, _, err := tk.redeem(code, now); err != nil {
		t.Fatal(err)
	}
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "station"} {
		if got := safeNext(next); got != "/" {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}
}

func TestWebSocketOrigin(t *testing.T) {
	_, srv := startHub(t, Options{AllowedOrigins: []string{"https://ops.pvg-w.lan"}})
	u, _ := url.Parse(srv.URL)
	cases := []struct {
		origin string
		ok     bool
	}{
		{"", true}, // not a browser
		{"http://" + u.Host, true},
		{"https://ops.pvg-w.lan", true},
		{"https://OPS.pvg-w.lan/", true},
		{"http://evil.example", false},
		{"http://" + u.Hostname() + ":1", false}, // another port is another origin
		{"null", false},
		{"file://", false},
	}
	for _, c := range cases {
		hdr := http.Header{}
		if c.origin != "" {
			hdr.Set("Origin", c.origin)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, ""), hdr)
		if c.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", c.origin, err)
				continue
			}
			conn.Close()
			continue
		}
		if err == nil {
			conn.Close()
			t.Errorf("origin %q: cross-origin WebSocket accepted", c.origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: %v, want HTTP 403", c.origin, err)
		}
	}
}

func outcome(st, code string, pass bool, reason string) scan.Outcome {
	return scan.Outcome{Kind: "scan", Station: st, Role: "gate", At: time.Now().UTC(), Code: code,
		Subject: &customs.Subject{Kind: customs.Parcel, ID: code}, Pass: pass, Reason: reason, Gate: map[bool]string{true: "opened", false: "closed"}[pass]}
}

func TestFanOutAndFilter(t *testing.T) {
	h, srv := startHub(t, Options{})
	h.Decided(outcome("gate-3", "RR000000001CN", true, "released")) // before anyone connects
	waitFor(t, func() bool { return h.Overview().Counts.Pass == 1 })

	gate := dial(t, srv, "?station=gate-3", nil)
	all := dial(t, srv, "", nil)
	// A screen that connects late gets the recent scans in its hello.
	c, _, err := websocket.DefaultDialer.Dial(wsURL(srv, "?station=gate-3"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := readMsg(t, c); m.Type != "hello" || len(m.Recent) != 1 || m.Recent[0].Code != "RR000000001CN" {
		t.Fatalf("hello %+v", m)
	}

	h.Decided(outcome("sort-1", "RR000000002CN", false, "unknown"))
	h.Decided(outcome("gate-3", "RR000000003CN", false, "held:inspection"))
	if m := next(t, gate, "decision"); m.Outcome.Code != "RR000000003CN" || m.Outcome.Pass {
		t.Fatalf("station screen got %+v, want only its own station's scan", m.Outcome)
	}
	var got []string
	for len(got) < 2 {
		got = append(got, next(t, all, "decision").Outcome.Code)
	}
	if !slices.Equal(got, []string{"RR000000002CN", "RR000000003CN"}) {
		t.Fatalf("all-stations screen got %v", got)
	}
	h.Device("gate-3", "gate", device.Fault, "no ack")
	if m := next(t, gate, "device"); m.Device != "gate" {
		t.Fatalf("device %+v", m)
	}
	ov := next(t, all, "overview").Overview
	if ov.Counts.Pass != 1 || ov.Counts.Stop != 2 || ov.Counts.ByReason["held:inspection"] != 1 {
		t.Errorf("counts %+v", ov.Counts)
	}
	if ov.Stations[0].Gate.State != "fault" {
		t.Errorf("gate state %+v, want fault", ov.Stations[0].Gate)
	}
	if !slices.ContainsFunc(ov.Alarms, func(a Alarm) bool { return a.Kind == AlarmDeviceDown && a.Station == "gate-3" }) {
		t.Errorf("alarms %+v", ov.Alarms)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// A screen that does not keep up is dropped; the others and the hub go on.
func TestSlowScreenDropped(t *testing.T) {
	h := New(Options{SendBuffer: 2})
	stuck := &client{send: make(chan []byte, 2)}
	ok := &client{send: make(chan []byte, 100)}
	h.clients[stuck], h.clients[ok] = struct{}{}, struct{}{}
	for i := range 5 {
		h.apply(item{outcome: &scan.Outcome{Station: "gate-3", Code: string(rune('A' + i))}})
	}
	if _, in := h.clients[stuck]; in {
		t.Fatal("a screen with a full queue is still registered")
	}
	if _, open := <-stuck.send; !open {
		t.Fatal("queue closed before its messages were read")
	}
	<-stuck.send
	if _, open := <-stuck.send; open {
		t.Fatal("a dropped screen's queue is not closed")
	}
	if stuck.code != websocket.CloseTryAgainLater {
		t.Errorf("close code %d", stuck.code)
	}
	if len(ok.send) != 5 || h.slow.Load() != 1 {
		t.Errorf("healthy screen has %d messages, slow count %d", len(ok.send), h.slow.Load())
	}
}

// Decided never blocks, even with no hub loop running.
func TestDecidedNeverBlocks(t *testing.T) {
	h := New(Options{})
	done := make(chan struct{})
	go func() {
		for range inBuffer + 100 {
			h.Decided(scan.Outcome{Station: "x"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Decided blocked")
	}
	if h.dropped.Load() != 100 {
		t.Errorf("dropped %d, want 100", h.dropped.Load())
	}
}

func TestShutdownClosesScreens(t *testing.T) {
	h := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	c := dial(t, srv, "", nil)
	cancel()
	<-done
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("closed with %v, want going away", err)
		}
		break
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, ""), nil); err == nil || resp.StatusCode != 503 {
		t.Fatalf("a stopped hub accepted a screen: %v", err)
	}
}

func TestConnectionCap(t *testing.T) {
	_, srv := startHub(t, Options{MaxClients: 2})
	dial(t, srv, "", nil)
	dial(t, srv, "", nil)
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL(srv, ""), nil); err == nil || resp.StatusCode != 503 {
		t.Fatalf("third screen over a cap of 2: %v", err)
	}
}

// TestConnectionCapConcurrent opens many screens at once: the cap holds
// however the upgrades interleave (the slot is taken with the check).
func TestConnectionCapConcurrent(t *testing.T) {
	const limit, tries = 3, 40
	// Widen the window between the check and the registration.
	testHookUpgrade = func() { time.Sleep(20 * time.Millisecond) }
	t.Cleanup(func() { testHookUpgrade = nil })
	h, srv := startHub(t, Options{MaxClients: limit})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []*websocket.Conn
	start := make(chan struct{})
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, _, err := websocket.DefaultDialer.Dial(wsURL(srv, ""), nil)
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	if len(open) > limit {
		t.Fatalf("%d screens open over a cap of %d", len(open), limit)
	}
	if len(open) == 0 {
		t.Fatal("no screen got in")
	}
	if n := h.Overview().Screens; n > limit {
		t.Fatalf("hub counts %d screens over a cap of %d", n, limit)
	}
}

func TestReadLimit(t *testing.T) {
	h, srv := startHub(t, Options{})
	c := dial(t, srv, "", nil)
	c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 4096)))
	waitFor(t, func() bool { return h.Overview().Screens == 0 })
}
