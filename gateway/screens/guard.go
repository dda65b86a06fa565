package screens

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// tokenCookie carries a paired device's token.
const tokenCookie = "cargogate_token"

// cookieMaxAge keeps a paired screen paired across browser restarts.
const cookieMaxAge = 400 * 24 * 3600

// guard holds the HTTP protections (PROTOCOL trust rules for the page):
//
//   - Host allow-list, against DNS rebinding: the Host header must be an IP
//     address, localhost, or the host of an allowed origin.
//   - A token for every client not on loopback (or every client, with
//     NoLoopback), in the cookie a pairing link set or as
//     "Authorization: Bearer"; never in the URL. The token's role decides
//     the routes (need).
//   - Origin allow-list for the WebSocket and the operator's POSTs,
//     against cross-site requests: same origin, or an allowed origin.
type guard struct {
	origins    map[string]bool // normalized scheme://host[:port]
	hosts      map[string]bool // lower-case host names of the allowed origins
	tokens     *tokens
	noLoopback bool
	// login, if set, is a page outside the token check where a browser
	// gives its token (Protect); a browser without one is sent there.
	login string
	// cookie is the name of the cookie carrying a token: tokenCookie, or
	// viewCookie on a Protect server.
	cookie string
}

func newGuard(origins []string, tk *tokens, noLoopback bool) *guard {
	g := &guard{origins: map[string]bool{}, hosts: map[string]bool{}, tokens: tk, noLoopback: noLoopback, cookie: tokenCookie}
	for _, o := range origins {
		n, host, ok := normalizeOrigin(o)
		if !ok {
			continue // config validation reports it
		}
		g.origins[n] = true
		g.hosts[host] = true
	}
	return g
}

// normalizeOrigin returns scheme://host[:port] in lower case and the host
// name, for an http or https origin.
func normalizeOrigin(o string) (norm, host string, ok bool) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(o), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), strings.ToLower(u.Hostname()), true
}

// ValidOrigin reports whether o is usable in Options.AllowedOrigins.
func ValidOrigin(o string) bool {
	_, _, ok := normalizeOrigin(o)
	return ok
}

func (g *guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; "+
			"frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !g.hostOK(r.Host) {
			hd.Set("Connection", "close")
			http.Error(w, "host not allowed: open the screens by IP address or add the name to http.allowed_origins", http.StatusMisdirectedRequest)
			return
		}
		if r.URL.Path == "/pair" || (g.login != "" && r.URL.Path == g.login) {
			next.ServeHTTP(w, r) // the one-time code, or the token given to the login form, is the credential
			return
		}
		who, ok := g.authenticate(w, r)
		if !ok {
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, who)))
	})
}

// hostOK: an IP address, localhost, or an allowed origin's host. An empty
// Host (HTTP/1.0) comes from no browser, so no rebinding.
func (g *guard) hostOK(hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	return g.hosts[host]
}

// forwardHeaders are set by reverse proxies: a request carrying one was
// forwarded from another host, even when it reaches us over loopback.
var forwardHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "Via"}

// onLoopback: the request comes from this host itself, not through a
// reverse proxy on it.
func onLoopback(r *http.Request) bool {
	for _, k := range forwardHeaders {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authenticate finds who a request comes from, or answers the refusal
// itself. A token in the URL is refused whole: URLs end up in proxy logs,
// browser history and screenshots.
func (g *guard) authenticate(w http.ResponseWriter, r *http.Request) (Who, bool) {
	if r.URL.Query().Has("token") {
		w.Header().Set("Connection", "close")
		http.Error(w, "tokens are not accepted in URLs: pair this screen with a pairing link (cargogate pair), or send Authorization: Bearer", http.StatusBadRequest)
		return Who{}, false
	}
	if !g.noLoopback && onLoopback(r) {
		// A handheld's cookie names its station: a device paired on this
		// machine (the demo) is that device, not the loopback operator.
		if c, err := r.Cookie(g.cookie); err == nil {
			if who, ok := g.tokens.lookup(c.Value); ok && who.Role == RoleScan {
				return who, true
			}
		}
		return Who{Name: "loopback", Role: RoleOperator}, true
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if who, ok := g.tokens.lookup(v); ok {
			return who, true
		}
		w.Header().Set("Connection", "close")
		http.Error(w, "wrong token", http.StatusUnauthorized)
		return Who{}, false
	}
	if c, err := r.Cookie(g.cookie); err == nil {
		if who, ok := g.tokens.lookup(c.Value); ok {
			return who, true
		}
	}
	if g.login != "" && r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
		seeOther(w, r, strings.TrimPrefix(g.login, "/"))
		return Who{}, false
	}
	w.Header().Set("Connection", "close")
	http.Error(w, "not paired and no token: a screen opens the pairing link the operator makes with `cargogate pair`; "+
		"API clients send Authorization: Bearer (the CLI reads CARGOGATE_TOKEN)", http.StatusUnauthorized)
	return Who{}, false
}

// setCookie gives a paired device its token: HttpOnly (no script reads
// it), SameSite=Strict (no other site's page sends it), Secure under TLS,
// ours or a reverse proxy's.
func (g *guard) setCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{Name: g.cookie, Value: token, Path: "/", MaxAge: cookieMaxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || forwardedHTTPS(r)})
}

// forwardedHTTPS reports whether a reverse proxy says the browser's
// connection is HTTPS. Believing a forged one only makes the cookie
// Secure, which a browser on plain HTTP then refuses: no weaker.
func forwardedHTTPS(r *http.Request) bool {
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https") {
		return true
	}
	for _, f := range r.Header.Values("Forwarded") {
		for _, part := range strings.FieldsFunc(f, func(c rune) bool { return c == ';' || c == ',' }) {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.EqualFold(k, "proto") && strings.EqualFold(strings.Trim(v, `"`), "https") {
				return true
			}
		}
	}
	return false
}

// originOK: no Origin (not a browser, so no other site's page can be
// behind it), the page's own origin, or an allowed one.
func (g *guard) originOK(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	n, _, ok := normalizeOrigin(o)
	return ok && g.origins[n]
}

// seeOther redirects to target, a path from the root of this server, by a
// Location relative to the request's path: behind a reverse proxy that
// serves us under a prefix (stripped before it reaches us), the browser
// stays under it. (http.Redirect would make it absolute.)
func seeOther(w http.ResponseWriter, r *http.Request, target string) {
	up := strings.Repeat("../", max(0, strings.Count(r.URL.Path, "/")-1))
	if up == "" {
		up = "./"
	}
	w.Header().Set("Location", up+target)
	w.WriteHeader(http.StatusSeeOther)
}
