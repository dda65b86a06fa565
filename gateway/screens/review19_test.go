package screens

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Hostile review of issue 19 (the web surface), as a client on the LAN.

// pairScreen mints a pairing link as the operator and opens it, returning
// the device's cookie.
func pairScreen(t *testing.T, srv *httptest.Server, opTok, name string) *http.Cookie {
	t.Helper()
	cl := srv.Client()
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("POST", srv.URL+"/api/pair?name="+name, nil)
	req.Header.Set("Authorization", "Bearer "+opTok)
	resp, err := cl.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("mint: %v %v", err, resp)
	}
	var minted struct{ Link string }
	json.NewDecoder(resp.Body).Decode(&minted)
	resp.Body.Close()
	resp, err = cl.Get(srv.URL + minted.Link)
	if err != nil || resp.StatusCode != 303 {
		t.Fatalf("pair: %v %v", err, resp)
	}
	resp.Body.Close()
	ck := resp.Cookies()
	if len(ck) != 1 {
		t.Fatalf("cookies %v", ck)
	}
	return &http.Cookie{Name: tokenCookie, Value: ck[0].Value}
}

// closedSoon reads c until the server closes it; it fails when more than
// max messages (the overview comes every second) arrive first.
func closedSoon(t *testing.T, c *websocket.Conn, max int) {
	t.Helper()
	for i := 0; i < max; i++ {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
	t.Fatalf("the WebSocket is still open after %d messages", max)
}

// TestReview19_RevokeClosesWebSocket: a paired screen that is revoked (a
// stolen kiosk, `cargogate pair --revoke`) must stop receiving the live
// decisions at once, not keep its WebSocket open for as long as it likes.
// Pairing the same name again (which replaces its token) likewise cuts the
// old token's WebSocket.
func TestReview19_RevokeClosesWebSocket(t *testing.T) {
	const opTok = "0123456789abcdef-operator"
	_, srv := startHub(t, Options{Tokens: []Credential{{"ops", RoleOperator, opTok}}, NoLoopback: true})
	for _, how := range []string{"revoke", "pair again"} {
		t.Run(how, func(t *testing.T) {
			cookie := pairScreen(t, srv, opTok, "wall-1")
			c := dial(t, srv, "", http.Header{"Cookie": {cookie.String()}})
			var req *http.Request
			if how == "revoke" {
				req, _ = http.NewRequest("POST", srv.URL+"/api/unpair?name=wall-1", nil)
				req.Header.Set("Authorization", "Bearer "+opTok)
				resp, err := srv.Client().Do(req)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("unpair: %v %v", err, resp)
				}
				resp.Body.Close()
			} else {
				pairScreen(t, srv, opTok, "wall-1")
			}
			closedSoon(t, c, 10)
		})
	}
}

// TestReview19_PairNextNoOffsiteRedirect: browsers drop tabs and newlines
// from a URL, so a Location of "/<TAB>/evil.example" is "//evil.example":
// another site. The pairing redirect must stay on the gateway.
func TestReview19_PairNextNoOffsiteRedirect(t *testing.T) {
	for _, next := range []string{"/\t/evil.example", "/\x00/evil.example", "/\x7f", "/\x1b/evil.example"} {
		if got := safeNext(next); got != "/" {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}
	for _, next := range []string{"/", "/station/gate-3", "/supervisor"} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}
}

// TestReview19_ForwardedIsNotLoopback: behind a reverse proxy on the same
// host every client comes from loopback. A request that carries the
// proxy's forwarding headers did not start on this host: it is not served
// as operator without a token, even when http.trust_loopback was left on.
func TestReview19_ForwardedIsNotLoopback(t *testing.T) {
	h := New(Options{Stations: []StationInfo{{ID: "gate-3", Role: "gate", Gate: true}}})
	for _, hdr := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Forwarded-Host"} {
		r := httptest.NewRequest("GET", "/lookup", nil)
		r.RemoteAddr = "127.0.0.1:5000"
		r.Host = "127.0.0.1:8080"
		r.Header.Set(hdr, "10.0.0.9")
		w := httptest.NewRecorder()
		h.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("loopback with %s: HTTP %d, want 401", hdr, w.Code)
		}
	}
	// A plain loopback client is still the operator.
	r := httptest.NewRequest("GET", "/lookup", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Host = "127.0.0.1:8080"
	w := httptest.NewRecorder()
	h.Handler().ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("loopback: HTTP %d", w.Code)
	}
}

// TestReview19_RefusedClientIsNotKeptAlive: a client refused (no token,
// wrong token, bad Host, a used pairing code) must not keep its
// connection as an idle keep-alive: with the connection cap, a host with
// no token could otherwise hold every slot for the idle timeout (60 s)
// with one request per connection per minute, and lock every screen out.
func TestReview19_RefusedClientIsNotKeptAlive(t *testing.T) {
	_, srv := startHub(t, Options{Tokens: []Credential{{"ops", RoleOperator, "0123456789abcdef-operator"}}, NoLoopback: true})
	cases := []struct{ path, host, bearer string }{
		{path: "/"},
		{path: "/api/status", bearer: "wrong-wrong-wrong-wrong"},
		{path: "/", host: "evil.example"},
		{path: "/pair?code=nope"},
		{path: "/?token=x"},
	}
	for _, c := range cases {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		host := srv.Listener.Addr().String()
		if c.host != "" {
			host = c.host
		}
		req := "GET " + c.path + " HTTP/1.1\r\nHost: " + host + "\r\n"
		if c.bearer != "" {
			req += "Authorization: Bearer " + c.bearer + "\r\n"
		}
		io.WriteString(conn, req+"\r\n")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode < 400 {
			t.Fatalf("%s: HTTP %d", c.path, resp.StatusCode)
		}
		if !resp.Close {
			t.Errorf("%s (host %q): HTTP %d with the connection kept alive", c.path, c.host, resp.StatusCode)
		}
		conn.Close()
	}
}

// TestReview19_RoleBypassTricks: a screens token (a kiosk's), a scan
// token, and no token try the operator's routes through method and path
// variants and header tricks; none gets a 2xx or a redirect that a client
// could follow to a 2xx.
func TestReview19_RoleBypassTricks(t *testing.T) {
	const opTok, scTok, scanTok = "0123456789abcdef-operator", "0123456789abcdef-screens", "0123456789abcdef-scan"
	served := 0
	opRoute := func(p string) Route {
		return Route{Pattern: "GET " + p, Need: NeedOperate, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ })}
	}
	h := New(Options{Tokens: []Credential{{"ops", RoleOperator, opTok}, {"wall", RoleScreens, scTok}, {"hand", RoleScan, scanTok}},
		Routes: []Route{opRoute("/api/backup"), opRoute("/api/audit/verify"), opRoute("/api/export/events")}})
	targets := []string{"/api/backup", "/api/backup/", "//api/backup", "/api/./backup", "/api/%2e/backup", "/api/x/../backup",
		"/API/backup", "/api/backup%2f", "/api/backup?file=orders.db", "/api/audit/verify", "/api/audit//verify",
		"/api/export/events", "/lookup", "/api/inspect?code=x", "/static/../api/backup"}
	type cred struct {
		name string
		set  func(r *http.Request)
	}
	creds := []cred{
		{"none", func(r *http.Request) {}},
		{"screens cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: tokenCookie, Value: scTok}) }},
		{"screens bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+scTok) }},
		{"scan bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+scanTok) }},
		{"screens bearer, operator second header", func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer "+scTok)
			r.Header.Add("Authorization", "Bearer "+opTok)
		}},
		{"screens bearer, operator token as cookie", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+scTok)
			r.AddCookie(&http.Cookie{Name: tokenCookie, Value: opTok + "x"})
		}},
		{"lower-case bearer with operator token padded", func(r *http.Request) { r.Header.Set("Authorization", "Bearer  "+opTok) }},
		{"operator token with a NUL", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+opTok+"\x00") }},
		{"screens cookie twice, operator-ish second", func(r *http.Request) {
			r.Header.Add("Cookie", tokenCookie+"="+scTok+"; "+tokenCookie+"="+opTok[:10])
		}},
	}
	for _, c := range creds {
		for _, target := range targets {
			for _, method := range []string{"GET", "HEAD", "POST", "OPTIONS"} {
				r := httptest.NewRequest(method, target, nil)
				r.RemoteAddr = "10.0.0.9:5000"
				r.Host = "10.0.0.7:8080"
				c.set(r)
				w := httptest.NewRecorder()
				before := served
				h.Handler().ServeHTTP(w, r)
				if served != before || w.Code < 300 {
					t.Errorf("%s %s with %s: HTTP %d, operator handler ran %v", method, target, c.name, w.Code, served != before)
				}
				if loc := w.Header().Get("Location"); loc != "" && (w.Code == 301 || w.Code == 307 || w.Code == 308) {
					// A redirect is only a cleaned path: following it
					// is the same request again, checked again.
					if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
						t.Errorf("%s %s: redirect to %q", method, target, loc)
					}
				}
			}
		}
	}
}

// TestReview19_PairingCodeOnceUnderRace: many devices open the same
// pairing link at once; exactly one gets a token.
func TestReview19_PairingCodeOnceUnderRace(t *testing.T) {
	tk, _ := newTokens(nil, filepath.Join(t.TempDir(), "paired.json"))
	now := time.Now()
	code := tk.mint(Who{Name: "wall-1", Role: RoleScreens}, now, time.Minute)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := tk.redeem(code, now); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("the code was exchanged %d times", ok.Load())
	}
}

// TestReview19_CookieSecureBehindTLSProxy: behind the documented
// alternative to built-in TLS, a reverse proxy that terminates HTTPS, the
// browser's connection is TLS but the gateway's is not: the pairing
// cookie must still be Secure (the proxy says so in X-Forwarded-Proto or
// Forwarded), or a kiosk that once opens any http:// page of the same
// host (cookies ignore the port) sends its token in clear.
func TestReview19_CookieSecureBehindTLSProxy(t *testing.T) {
	for _, hdr := range [][2]string{{"X-Forwarded-Proto", "https"}, {"Forwarded", "for=10.0.0.9;proto=https"}} {
		h := New(Options{NoLoopback: true})
		code := h.tokens.mint(Who{Name: "wall-1", Role: RoleScreens}, time.Now(), time.Minute)
		r := httptest.NewRequest("GET", "/pair?code="+code, nil)
		r.RemoteAddr = "127.0.0.1:5000"
		r.Host = "10.0.0.7"
		r.Header.Set(hdr[0], hdr[1])
		w := httptest.NewRecorder()
		h.Handler().ServeHTTP(w, r)
		ck := w.Result().Cookies()
		if w.Code != 303 || len(ck) != 1 || !ck[0].Secure {
			t.Errorf("%s: %s: HTTP %d, cookie %+v", hdr[0], hdr[1], w.Code, ck)
		}
	}
}
