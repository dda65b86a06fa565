package screens

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Cookies are per host, not per port: a Protect server (the fleet view) on
// the same host as a gateway's screens must not use the screens' cookie,
// or logging in to one logs the other browser out (and sends one's token
// to the other server).
func TestProtectCookieApart(t *testing.T) {
	const tok = "screens-token-0123456789"
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "view") })
	h, err := Protect(nil, []Credential{{Name: "wall", Role: RoleScreens, Token: tok}}, true,
		[]Route{{Pattern: "GET /{$}", Need: NeedView, Handler: ok}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := noRedirect.PostForm(srv.URL+LoginPath, url.Values{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	var got *http.Cookie
	for _, c := range r.Cookies() {
		got = c
	}
	if r.StatusCode != 303 || got == nil {
		t.Fatalf("login: %d, no cookie", r.StatusCode)
	}
	if got.Name == tokenCookie {
		t.Fatalf("the login cookie is %q, the gateway screens' own cookie", got.Name)
	}
	// Its own cookie lets in; the screens' cookie does not.
	for _, c := range []struct {
		cookie string
		want   int
	}{{got.Name + "=" + got.Value, 200}, {tokenCookie + "=" + tok, 401}} {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.Header.Set("Cookie", c.cookie)
		r, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode != c.want {
			t.Errorf("cookie %s: %d, want %d", strings.SplitN(c.cookie, "=", 2)[0], r.StatusCode, c.want)
		}
	}
}
