package screens

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// tokenCookie carries the token once a page was opened with ?token=.
const tokenCookie = "cargogate_token"

// guard holds the HTTP protections (PROTOCOL trust rules for the page):
//
//   - Host allow-list, against DNS rebinding: the Host header must be an IP
//     address, localhost, or the host of an allowed origin.
//   - A token for every client not on loopback; none configured means
//     loopback only.
//   - Origin allow-list for the WebSocket, against cross-site WebSocket
//     hijacking: same origin, or an allowed origin.
type guard struct {
	origins map[string]bool // normalized scheme://host[:port]
	hosts   map[string]bool // lower-case host names of the allowed origins
	token   string
}

func newGuard(origins []string, token string) *guard {
	g := &guard{origins: map[string]bool{}, hosts: map[string]bool{}, token: token}
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
		if !g.hostOK(r.Host) {
			http.Error(w, "host not allowed: open the screens by IP address or add the name to http.allowed_origins", http.StatusMisdirectedRequest)
			return
		}
		if !onLoopback(r) && !g.authorized(w, r) {
			return
		}
		next.ServeHTTP(w, r)
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

func onLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authorized checks the token of a client not on loopback and answers the
// refusal itself. A page opened with ?token= gets the cookie and is sent
// to the same address without the token, so it stays out of the address
// bar and the history.
func (g *guard) authorized(w http.ResponseWriter, r *http.Request) bool {
	if g.token == "" {
		http.Error(w, "this gateway serves screens off loopback only with a token: set http.token", http.StatusForbidden)
		return false
	}
	if q := r.URL.Query(); q.Has("token") {
		if !g.match(q.Get("token")) {
			http.Error(w, "wrong token", http.StatusUnauthorized)
			return false
		}
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: q.Get("token"), Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/ws" {
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return false
		}
		return true
	}
	if c, err := r.Cookie(tokenCookie); err == nil && g.match(c.Value) {
		return true
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && g.match(v) {
		return true
	}
	http.Error(w, "token required: open this screen once as …?token=TOKEN", http.StatusUnauthorized)
	return false
}

func (g *guard) match(v string) bool {
	return subtle.ConstantTimeCompare([]byte(v), []byte(g.token)) == 1
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
