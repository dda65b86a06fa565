package screens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Roles of HTTP clients. A client has one role; each route needs one
// permission, and a role grants some permissions:
//
//	screens   view: the pages (not the lookup), the WebSocket, status, overview, recent, metrics, health
//	operator  view and operate: besides, the lookup, inspect, backup, exports, audit, pairing
//	scan      scan: a handheld device's page and WebSocket (/h/{station}), for the one station its token is bound to
const (
	RoleScreens  = "screens"
	RoleOperator = "operator"
	RoleScan     = "scan"
)

// Need is the permission a route needs.
type Need int

// Permissions.
const (
	NeedView Need = iota
	NeedOperate
	NeedScan
)

func (n Need) String() string {
	return [...]string{"view", "operate", "scan"}[n]
}

// grants reports whether role has the permission n.
func grants(role string, n Need) bool {
	switch role {
	case RoleOperator:
		return n == NeedView || n == NeedOperate
	case RoleScreens:
		return n == NeedView
	case RoleScan:
		return n == NeedScan
	}
	return false
}

// Credential is a configured token and who holds it.
type Credential struct {
	Name, Role, Token string
}

// Who is the client a request comes from.
type Who struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// cred is the SHA-256 of the token the client presented (zero on
	// trusted loopback): a WebSocket opened with a token is closed when
	// the token is revoked or replaced.
	cred [32]byte
	// Station is the handheld station a scan-role device is bound to.
	Station string `json:"station,omitempty"`
}

// DefaultPairingTTL is how long a pairing link may wait to be opened.
const DefaultPairingTTL = 10 * time.Minute

// pairedToken is a token minted for a paired device, as kept on disk: only
// its SHA-256, never the token.
type pairedToken struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
	Station string    `json:"station,omitempty"`
}

type pairing struct {
	who     Who
	expires time.Time
	// fresh: the link may only pair a device under a name no paired
	// device has (an unnamed pairing's generated name); redeeming it when
	// the name was taken meanwhile is refused, never a replacement.
	fresh bool
}

// tokens is the token store: configured tokens, paired devices' tokens
// (persisted as hashes in file) and the one-time pairing codes in flight.
// Lookups are by SHA-256 of the presented token, so no comparison runs on
// the secret itself.
type tokens struct {
	file string // "": paired tokens live in memory only

	mu     sync.Mutex
	byHash map[[32]byte]Who
	paired []pairedToken
	codes  map[[32]byte]pairing
	used   map[string]time.Time // paired device → its last request (since start)
}

func newTokens(creds []Credential, file string) (*tokens, error) {
	t := &tokens{file: file, byHash: map[[32]byte]Who{}, codes: map[[32]byte]pairing{}, used: map[string]time.Time{}}
	for _, c := range creds {
		t.byHash[sha256.Sum256([]byte(c.Token))] = Who{Name: c.Name, Role: c.Role}
	}
	if file == "" {
		return t, nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &t.paired); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, p := range t.paired {
		raw, err := hex.DecodeString(p.SHA256)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%s: %q: bad sha256", file, p.Name)
		}
		t.byHash[[32]byte(raw)] = Who{Name: p.Name, Role: p.Role, Station: p.Station}
	}
	return t, nil
}

func (t *tokens) lookup(token string) (Who, bool) {
	if token == "" {
		return Who{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h := sha256.Sum256([]byte(token))
	w, ok := t.byHash[h]
	w.cred = h
	if ok {
		t.used[w.Name] = time.Now().UTC()
	}
	return w, ok
}

// valid reports whether the token of hash h still lets a client in.
func (t *tokens) valid(h [32]byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.byHash[h]
	return ok
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// mint makes a one-time pairing code for a device of role named name.
func (t *tokens) mint(who Who, now time.Time, ttl time.Duration) string {
	code, _ := t.mintCode(who, now, ttl, false)
	return code
}

// mintCode is mint; with fresh, it refuses (ok false) a name that a
// paired device or a pending pairing link already has.
func (t *tokens) mintCode(who Who, now time.Time, ttl time.Duration, fresh bool) (code string, ok bool) {
	code = randomToken()
	t.mu.Lock()
	defer t.mu.Unlock()
	for h, p := range t.codes {
		if now.After(p.expires) {
			delete(t.codes, h)
		}
	}
	if fresh && t.nameTakenLocked(who.Name) {
		return "", false
	}
	t.codes[sha256.Sum256([]byte(code))] = pairing{who: who, expires: now.Add(ttl), fresh: fresh}
	return code, true
}

// nameTakenLocked reports whether a paired device or a pending pairing
// link has the name.
func (t *tokens) nameTakenLocked(name string) bool {
	if slices.ContainsFunc(t.paired, func(p pairedToken) bool { return p.Name == name }) {
		return true
	}
	for _, p := range t.codes {
		if p.who.Name == name {
			return true
		}
	}
	return false
}

// redeem exchanges a pairing code, once, for a new device token.
func (t *tokens) redeem(code string, now time.Time) (string, Who, error) {
	h := sha256.Sum256([]byte(code))
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.codes[h]
	delete(t.codes, h)
	if !ok || now.After(p.expires) {
		return "", Who{}, errors.New("this pairing link was used already or has expired: ask the operator for a new one (cargogate pair)")
	}
	if p.fresh && slices.ContainsFunc(t.paired, func(x pairedToken) bool { return x.Name == p.who.Name }) {
		return "", Who{}, errors.New("a device of this name was paired meanwhile: ask the operator for a new link (cargogate pair)")
	}
	token := randomToken()
	th := sha256.Sum256([]byte(token))
	paired := append(slices.DeleteFunc(slices.Clone(t.paired), func(x pairedToken) bool { return x.Name == p.who.Name }),
		pairedToken{Name: p.who.Name, Role: p.who.Role, SHA256: hex.EncodeToString(th[:]), Created: now.UTC(), Station: p.who.Station})
	if err := t.saveLocked(paired); err != nil {
		return "", Who{}, err
	}
	// A device paired again under the same name replaces its old token.
	for _, old := range t.paired {
		if old.Name == p.who.Name {
			raw, _ := hex.DecodeString(old.SHA256)
			delete(t.byHash, [32]byte(raw))
		}
	}
	t.paired = paired
	t.byHash[th] = p.who
	return token, p.who, nil
}

// revoke forgets the paired device named name.
func (t *tokens) revoke(name string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := slices.IndexFunc(t.paired, func(x pairedToken) bool { return x.Name == name })
	if i < 0 {
		return false, nil
	}
	paired := slices.Delete(slices.Clone(t.paired), i, i+1)
	if err := t.saveLocked(paired); err != nil {
		return false, err
	}
	raw, _ := hex.DecodeString(t.paired[i].SHA256)
	delete(t.byHash, [32]byte(raw))
	t.paired = paired
	return true, nil
}

// saveLocked writes the paired tokens' hashes: a temporary file, synced,
// renamed over the old one.
func (t *tokens) saveLocked(paired []pairedToken) error {
	if t.file == "" {
		return nil
	}
	b, _ := json.MarshalIndent(paired, "", "  ")
	f, err := os.CreateTemp(filepath.Dir(t.file), ".paired-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), t.file)
}

type whoKey struct{}

// WhoFrom returns the client a request was authenticated as.
func WhoFrom(ctx context.Context) (Who, bool) {
	w, ok := ctx.Value(whoKey{}).(Who)
	return w, ok
}

// need lets through only a client whose role grants n.
func need(n Need, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, _ := WhoFrom(r.Context())
		if !grants(who.Role, n) {
			http.Error(w, fmt.Sprintf("forbidden: this needs the %s permission, and %q has role %q", n, who.Name, who.Role), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// safeNext is where a pairing link may send the browser: a path on this
// server, with no backslash and no control character.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return "/"
	}
	// Browsers drop tabs and newlines from a URL ("/\t/evil" is
	// "//evil"): no control character at all.
	if strings.ContainsFunc(next, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "/"
	}
	return next
}

// servePair exchanges a pairing link's code for the device's token, in a
// cookie, and sends the browser on to its page without the code.
func (h *Hub) servePair(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token, who, err := h.tokens.redeem(q.Get("code"), h.opt.Now())
	if err != nil {
		h.log.Warn("pairing refused", "remote", r.RemoteAddr, "err", err)
		w.Header().Set("Connection", "close")
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	h.log.Info("device paired", "name", who.Name, "role", who.Role, "remote", r.RemoteAddr)
	h.dropRevoked() // the device's former token, if it was paired before
	h.audit("device paired", map[string]any{"name": who.Name, "role": who.Role, "station": who.Station, "remote": r.RemoteAddr})
	h.guard.setCookie(w, r, token)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, safeNext(q.Get("next")), http.StatusSeeOther)
}

// serveMintPairing (operator) makes a one-time pairing link:
// POST /api/pair?name=wall-1&role=screens&next=/supervisor.
func (h *Hub) serveMintPairing(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	role := q.Get("role")
	if role == "" {
		role = RoleScreens
	}
	name := q.Get("name")
	if !slices.Contains([]string{RoleScreens, RoleOperator, RoleScan}, role) || !nameRE(name) {
		http.Error(w, "name: letters, digits, - and _ (1 to 64); role: screens, operator or scan", http.StatusBadRequest)
		return
	}
	st := q.Get("station")
	if role == RoleScan || st != "" {
		// A handheld's token is good for one handheld station only.
		if role != RoleScan || !h.handheldStation(st) {
			http.Error(w, "station: a handheld station of this gateway (scanner driver handheld), with role scan", http.StatusBadRequest)
			return
		}
		if !q.Has("next") || q.Get("next") == "/" {
			q.Set("next", "/h/"+st)
		}
	}
	if !h.guard.originOK(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	by, _ := WhoFrom(r.Context())
	now := h.opt.Now()
	// new=1 (an unnamed pairing's generated name): never replace a device.
	code, ok := h.tokens.mintCode(Who{Name: name, Role: role, Station: st}, now, h.opt.PairingTTL, q.Get("new") == "1")
	if !ok {
		http.Error(w, "name: a paired device or a pending pairing link has this name", http.StatusConflict)
		return
	}
	h.log.Info("pairing link made", "name", name, "role", role, "station", st, "by", by.Name)
	h.audit("pairing link made", map[string]any{"name": name, "role": role, "station": st, "by": by.Name})
	link := "/pair?code=" + code
	if next := q.Get("next"); next != "" {
		link += "&next=" + url.QueryEscape(safeNext(next))
	}
	writeJSON(w, http.StatusOK, map[string]any{"link": link, "name": name, "role": role, "station": st, "expires": now.Add(h.opt.PairingTTL).UTC()})
}

// serveRevoke (operator) forgets a paired device: POST /api/unpair?name=wall-1.
func (h *Hub) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if !h.guard.originOK(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	name := r.URL.Query().Get("name")
	ok, err := h.tokens.revoke(name)
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	case !ok:
		http.Error(w, "no paired device of that name", http.StatusNotFound)
	default:
		by, _ := WhoFrom(r.Context())
		h.log.Info("device unpaired", "name", name)
		h.audit("device unpaired", map[string]any{"name": name, "by": by.Name})
		h.dropDevice(name)
		h.dropRevoked()
		writeJSON(w, http.StatusOK, map[string]any{"revoked": name})
	}
}

func nameRE(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// ValidDeviceName reports whether s can name a paired device: letters,
// digits, - and _, 1 to 64 of them (the CLI checks before it asks).
func ValidDeviceName(s string) bool { return nameRE(s) }

// PairedDevice is a paired device as the supervisor lists it.
type PairedDevice struct {
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Station  string    `json:"station,omitempty"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"` // zero: not used since the gateway started
}

// list returns the paired devices, with their last use.
func (t *tokens) list() []PairedDevice {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]PairedDevice, 0, len(t.paired))
	for _, p := range t.paired {
		out = append(out, PairedDevice{Name: p.Name, Role: p.Role, Station: p.Station, Created: p.Created, LastUsed: t.used[p.Name]})
	}
	return out
}

// pairedName reports whether a paired device of that name exists.
func (t *tokens) pairedName(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.ContainsFunc(t.paired, func(p pairedToken) bool { return p.Name == name })
}
