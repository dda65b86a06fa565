package screens

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Behind a reverse proxy that serves the view under a path (here /fleet/,
// stripped before it reaches us), the login round trip stays under it:
// the redirect to the login page, the form's action and the redirect after
// it are relative.
func TestProtectUnderPrefix(t *testing.T) {
	const tok = "screens-token-0123456789"
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "view") })
	h, err := Protect(nil, []Credential{{Name: "wall", Role: RoleScreens, Token: tok}}, true,
		[]Route{{Pattern: "GET /{$}", Need: NeedView, Handler: ok}, {Pattern: "GET /api/fleet", Need: NeedView, Handler: ok}})
	if err != nil {
		t.Fatal(err)
	}
	proxy := http.NewServeMux()
	proxy.Handle("/fleet/", http.StripPrefix("/fleet", h))
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resolve := func(from string, r *http.Response) string {
		t.Helper()
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		base, _ := url.Parse(srv.URL + from)
		return base.ResolveReference(loc).Path
	}
	req, _ := http.NewRequest("GET", srv.URL+"/fleet/", nil)
	req.Header.Set("Accept", "text/html")
	r, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if got := resolve("/fleet/", r); r.StatusCode != 303 || got != "/fleet/login" {
		t.Errorf("GET /fleet/ without a token: %d to %q, want 303 to /fleet/login", r.StatusCode, got)
	}
	r, err = noRedirect.Get(srv.URL + "/fleet/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	m := regexp.MustCompile(`action="([^"]*)"`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no form action in %s", b)
	}
	base, _ := url.Parse(srv.URL + "/fleet/login")
	act, _ := url.Parse(m[1])
	if got := base.ResolveReference(act).Path; got != "/fleet/login" {
		t.Errorf("the form posts to %q, want /fleet/login", got)
	}
	r, err = noRedirect.Post(srv.URL+"/fleet/login", "application/x-www-form-urlencoded", strings.NewReader("token="+tok))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if got := resolve("/fleet/login", r); r.StatusCode != 303 || got != "/fleet/" {
		t.Errorf("after login: %d to %q, want 303 to /fleet/", r.StatusCode, got)
	}
}
