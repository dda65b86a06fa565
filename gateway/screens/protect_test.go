package screens

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Protect: the screens' access rules on a server of its own (the fleet
// view), with a login page for browsers.
func TestProtect(t *testing.T) {
	const screensTok, scanTok = "screens-token-0123456789", "scan-token-0123456789ab"
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "view") })
	h, err := Protect(nil, []Credential{{Name: "wall", Role: RoleScreens, Token: screensTok}, {Name: "hh", Role: RoleScan, Token: scanTok}}, false,
		[]Route{{Pattern: "GET /{$}", Need: NeedView, Handler: ok}, {Pattern: "GET /api/fleet", Need: NeedView, Handler: ok}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, hdr map[string]string, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("X-Forwarded-For", "10.0.0.9") // off loopback, as through a proxy
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, c := range []struct {
		name         string
		method, path string
		hdr          map[string]string
		body         string
		want         int
	}{
		{"api without a token", "GET", "/api/fleet", nil, "", 401},
		{"api with a screens token", "GET", "/api/fleet", map[string]string{"Authorization": "Bearer " + screensTok}, "", 200},
		{"api with a scan token", "GET", "/api/fleet", map[string]string{"Authorization": "Bearer " + scanTok}, "", 403},
		{"a browser without a token is sent to log in", "GET", "/", map[string]string{"Accept": "text/html"}, "", 303},
		{"the login page", "GET", LoginPath, nil, "", 200},
		{"a wrong token", "POST", LoginPath, form, "token=nope-nope-nope-nope", 401},
		{"a scan token cannot view", "POST", LoginPath, form, "token=" + scanTok, 401},
		{"a cross-origin login", "POST", LoginPath, map[string]string{"Content-Type": form["Content-Type"], "Origin": "http://evil.example"}, "token=" + screensTok, 403},
		{"a token in the URL", "GET", "/api/fleet?token=" + screensTok, nil, "", 400},
	} {
		if r := do(c.method, c.path, c.hdr, c.body); r.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, r.StatusCode, c.want)
		}
	}
	r := do("POST", LoginPath, form, "token="+url.QueryEscape(screensTok))
	var cookie *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == viewCookie {
			cookie = c
		}
	}
	if r.StatusCode != 303 || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d, cookie %+v; want 303 and an HttpOnly SameSite=Strict cookie", r.StatusCode, cookie)
	}
	if r := do("GET", "/", map[string]string{"Cookie": viewCookie + "=" + cookie.Value}, ""); r.StatusCode != 200 {
		t.Errorf("page with the login cookie: %d", r.StatusCode)
	}
}
