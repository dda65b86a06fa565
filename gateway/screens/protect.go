package screens

import (
	"html"
	"net/http"
	"strings"
)

// LoginPath is the page of a Protect server where a browser gives its
// token.
const LoginPath = "/login"

// viewCookie carries the token a browser gave to a Protect server: not the
// screens' tokenCookie, since cookies are per host and not per port, and
// such a server may share its host with a gateway's screens.
const viewCookie = "cargogate_view_token"

// Protect serves routes behind the screens' protections (the Host
// allow-list, a token of a role for every client not on loopback, the
// Origin check for POSTs, the security headers), for a read-only server
// of its own such as the fleet view: no pairing, no WebSocket. Each route
// needs its permission. A browser gives its token once on LoginPath,
// which keeps it in an HttpOnly, SameSite=Strict cookie like a paired
// screen's (of another name: cookies do not tell ports apart); API clients send "Authorization: Bearer".
func Protect(origins []string, creds []Credential, noLoopback bool, routes []Route) (http.Handler, error) {
	tk, err := newTokens(creds, "")
	if err != nil {
		return nil, err
	}
	g := newGuard(origins, tk, noLoopback)
	g.login, g.cookie = LoginPath, viewCookie
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.Pattern, need(rt.Need, rt.Handler))
	}
	mux.HandleFunc("GET "+LoginPath, func(w http.ResponseWriter, r *http.Request) { loginPage(w, http.StatusOK, "") })
	mux.HandleFunc("POST "+LoginPath, func(w http.ResponseWriter, r *http.Request) {
		if !g.originOK(r) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		who, ok := tk.lookup(r.PostFormValue("token"))
		if !ok || !grants(who.Role, NeedView) {
			loginPage(w, http.StatusUnauthorized, "令牌无效 · wrong token")
			return
		}
		g.setCookie(w, r, r.PostFormValue("token"))
		seeOther(w, r, "")
	})
	return g.wrap(mux), nil
}

// loginPage is a bare form, in both languages, styled inline by nothing
// (the CSP allows no inline style): it is seen once per browser.
func loginPage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write([]byte(`<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
		`<title>cargogate</title></head><body><h1>cargogate</h1><p>` + html.EscapeString(msg) + `</p>` +
		`<form method="post" action="` + strings.TrimPrefix(LoginPath, "/") + `"><label>访问令牌 · Access token <input type="password" name="token" autocomplete="current-password" required></label> ` +
		`<button type="submit">登录 · Sign in</button></form></body></html>`))
}
