// Package fleet is the site's fleet view: every gateway of a site as its
// own signed `status` messages tell it (PROTOCOL §3 status, with the
// additions of docs/protocol.md), verified with the gateways' public keys.
// It keeps, per configured gateway, the last status it accepted and when
// it was seen; View ranks them worst first with an offline alarm; Handler
// serves the page, /api/fleet and the Prometheus metrics. It only reads:
// it publishes nothing.
//
// A status that is not signed by the gateway its topic names (unsigned,
// forged, another gateway's key, an unknown gateway, a wrong site or
// type, or an online status older than the last one accepted) is ignored
// and counted by reason; it never becomes a gateway's state.
package fleet

import (
	"cmp"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/tstime"
	"github.com/cargogate/cargogate/sync/envelope"
)

// DefaultOfflineAfter is Options.OfflineAfter's default.
const DefaultOfflineAfter = 5 * time.Minute

// lagGrace: a gateway behind the site's head for less than this (the
// moment between central's head and its next status, or one missed
// status) does not count as lagging; the figure is shown all the same.
const lagGrace = 30 * time.Second

// DefaultOutboxWarn is Options.OutboxWarn's default.
const DefaultOutboxWarn = 2 * time.Minute

// Options configure a Fleet.
type Options struct {
	Site string
	// Gateways are the site's gateways: name → Ed25519 public key. Each
	// is shown, seen or not; a status from any other is ignored.
	Gateways map[string]ed25519.PublicKey
	// CentralKeys, if set, verify central's retained head (§3 head), the
	// site's head the lag is measured against; without them (or before
	// central's head is seen) the head is the highest head_seq a gateway
	// reported.
	CentralKeys envelope.Keyring
	// Head, if set, is the site's head as the caller knows it (the
	// reference central: its ledger's), taken over CentralKeys.
	Head func() uint64
	// OfflineAfter: a gateway whose last status is older than this (or
	// never seen this long after the start) raises the offline alarm.
	// 0: DefaultOfflineAfter.
	OfflineAfter time.Duration
	// OutboxWarn: an oldest unacknowledged event older than this ranks
	// the gateway as a warning. 0: DefaultOutboxWarn.
	OutboxWarn time.Duration
	// Time is the clock "last seen" and the ages are measured on; nil:
	// the real one.
	Time tstime.Clock
	Log  *slog.Logger // nil: discard
}

// Ignore reasons, besides the envelope's (too_large, malformed,
// unknown_kid, bad_signature; see envelope.Reason).
const (
	IgnoredWrongTopic   = "wrong_topic"     // not a status or head topic of the site
	IgnoredWrongKid     = "wrong_kid"       // signed by another key than the topic's gateway
	IgnoredWrongSite    = "wrong_site"      // document's site is not ours
	IgnoredWrongType    = "wrong_type"      // not a status document
	IgnoredWrongGateway = "wrong_gateway"   // document's gateway is not the topic's
	IgnoredBadDocument  = "bad_document"    // payload does not parse, a bad state, no `at`
	IgnoredStale        = "stale"           // an online status older than the one shown
	IgnoredUnknown      = "unknown_gateway" // not a configured gateway of the site
	IgnoredClockAhead   = "clock_ahead"     // its `at` is more than offline_after ahead of the view's clock
)

// notCounted: a message neither accepted nor ignored: the online status
// already shown, again; a head without central's keys to verify it.
const notCounted = "not_counted"

// gw is what the fleet knows of one gateway.
type gw struct {
	status   *customs.Status
	seen     time.Time // when the last accepted status was received (see accept)
	onlineAt time.Time // the `at` of the last online status accepted (kept across offline)
	// oddAt: when a stale or clock_ahead status of it last came.
	oddAt time.Time
	// behindSince: since when its applied_seq is below the site's head
	// (zero: it is not).
	behindSince time.Time
}

// Fleet is the fleet view's state. Handle feeds it; View reads it.
type Fleet struct {
	opts  Options
	keys  envelope.Keyring // kid {site}/{gateway} → key
	time  tstime.Clock
	log   *slog.Logger
	start time.Time
	// connected: the subscription is up (Run).
	connected atomic.Bool

	mu       sync.Mutex
	gws      map[string]*gw
	head     uint64 // central's verified head
	headAt   time.Time
	ignored  map[string]uint64
	logged   map[string]logged // by reason, for the rate limit of Handle's log
	accepted uint64
}

// logEvery: Handle logs an ignored message of a reason at most this often.
const logEvery = time.Minute

// logged is when a reason was last logged, and how many since then were not.
type logged struct {
	at   time.Time
	more uint64
}

// New makes a Fleet of the configured gateways.
func New(opts Options) (*Fleet, error) {
	if !customs.NameRE.MatchString(opts.Site) {
		return nil, fmt.Errorf("fleet: site %q: %w", opts.Site, ErrBadName)
	}
	if opts.OfflineAfter <= 0 {
		opts.OfflineAfter = DefaultOfflineAfter
	}
	if opts.OutboxWarn <= 0 {
		opts.OutboxWarn = DefaultOutboxWarn
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{opts: opts, keys: envelope.Keyring{}, time: tstime.Or(opts.Time), log: opts.Log,
		gws: map[string]*gw{}, ignored: map[string]uint64{}, logged: map[string]logged{}}
	for name, pub := range opts.Gateways {
		if !customs.NameRE.MatchString(name) {
			return nil, fmt.Errorf("fleet: gateway %q: %w", name, ErrBadName)
		}
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("fleet: gateway %q: %w", name, ErrBadKey)
		}
		f.keys[opts.Site+"/"+name] = pub
		f.gws[name] = &gw{}
	}
	f.start = f.time.Now()
	return f, nil
}

// AddGateway adds a gateway of the site (or replaces its key), shown from
// now on; a bad name or key changes nothing.
func (f *Fleet) AddGateway(name string, pub ed25519.PublicKey) error {
	if !customs.NameRE.MatchString(name) {
		return fmt.Errorf("fleet: gateway %q: %w", name, ErrBadName)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("fleet: gateway %q: %w", name, ErrBadKey)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := envelope.Keyring{}
	for k, v := range f.keys {
		keys[k] = v
	}
	keys[f.opts.Site+"/"+name] = append(ed25519.PublicKey(nil), pub...)
	f.keys = keys // a copy: Handle reads the map it took under the lock
	if f.gws[name] == nil {
		f.gws[name] = &gw{}
	}
	return nil
}

// Topics are the MQTT topic filters the fleet subscribes to: every
// gateway's status, and central's head.
func (f *Fleet) Topics() []string {
	return []string{customs.GatewayTopic(f.opts.Site, "+", customs.LeafStatus), customs.HeadTopic(f.opts.Site)}
}

// Handle takes one message received on topic; retained says the broker
// delivered it from its store (at subscription). It returns the reason it
// was ignored, "" if it was taken.
func (f *Fleet) Handle(topic string, msg []byte, retained bool) string {
	now := f.time.Now()
	reason := f.handle(topic, msg, retained, now)
	if reason == notCounted {
		return reason // nothing new: neither accepted nor ignored
	}
	f.mu.Lock()
	if reason == "" {
		f.accepted++
		f.mu.Unlock()
		return ""
	}
	f.ignored[reason]++
	// One line per reason a minute at most, whatever anyone with publish
	// rights sends: the counts are in the view and the metrics.
	l := f.logged[reason]
	logIt := l.at.IsZero() || now.Sub(l.at) >= logEvery
	if logIt {
		f.logged[reason] = logged{at: now}
	} else {
		l.more++
		f.logged[reason] = l
	}
	f.mu.Unlock()
	if logIt {
		f.log.Warn("status ignored", "topic", topic, "reason", reason, "more_since_last_line", l.more)
	}
	return reason
}

func (f *Fleet) handle(topic string, msg []byte, retained bool, now time.Time) string {
	if topic == customs.HeadTopic(f.opts.Site) {
		return f.handleHead(msg)
	}
	name, why := f.statusTopic(topic)
	if why != "" {
		return why
	}
	f.mu.Lock()
	keys := f.keys
	f.mu.Unlock()
	payload, kid, err := keys.Open(msg)
	if err != nil {
		return envelope.Reason(err)
	}
	if kid != f.opts.Site+"/"+name {
		return IgnoredWrongKid
	}
	var s customs.Status
	if err := json.Unmarshal(payload, &s); err != nil {
		return IgnoredBadDocument
	}
	switch {
	case s.Type != customs.TypeStatus:
		return IgnoredWrongType
	case s.Site != f.opts.Site:
		return IgnoredWrongSite
	case s.Gateway != name:
		return IgnoredWrongGateway
	case s.State != "online" && s.State != "offline", s.At.IsZero():
		return IgnoredBadDocument
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.gws[name]
	if s.At.After(now.Add(f.opts.OfflineAfter)) {
		// Its clock is far ahead of ours: taken, its `at` would make every
		// later status stale once the clock is put right.
		g.oddAt = now
		return IgnoredClockAhead
	}
	if s.State == "online" {
		// A replayed online status would hide an outage: only one newer
		// than every online status accepted is taken, also after a will
		// or a clean stop (a replay then would show a dead gateway
		// online). A gateway whose clock went back is therefore not
		// shown online again until its clock passes its last status; its
		// row says clock_or_replay meanwhile. The same status again (a
		// QoS 1 duplicate, the retained one at our resubscription)
		// changes nothing.
		if s.At.Equal(g.onlineAt) {
			return notCounted
		}
		if s.At.Before(g.onlineAt) {
			g.oddAt = now
			return IgnoredStale
		}
		g.onlineAt = s.At
	} else if g.status != nil && s.At.Before(g.status.At) {
		// The will is made at connection, so an offline status may be
		// older than the online ones before it: it is taken as it comes,
		// with the figures of the last status (the will's are older).
		last := *g.status
		last.State = s.State
		s = last
	}
	// Last seen is when it came, on our clock; a retained status came
	// from the broker's store, so it is as old as it says if older; and
	// one older than offline_after by its own clock is that old (a
	// replay of a status from before an outage is not fresh).
	seen := now
	if retained && s.At.Before(now) {
		seen = s.At
	} else if s.At.Before(now.Add(-f.opts.OfflineAfter)) {
		seen = s.At
		if s.State == "online" {
			g.oddAt = now // its clock is far behind ours, or a replay
		}
	}
	g.status, g.seen = &s, seen
	f.trackLag(now)
	return ""
}

// statusTopic returns the gateway of customs/v1/{site}/gw/{gateway}/status,
// or why the topic is not one of a configured gateway's.
func (f *Fleet) statusTopic(topic string) (string, string) {
	p := strings.Split(topic, "/")
	if len(p) != 6 || p[0] != "customs" || p[1] != "v1" || p[2] != f.opts.Site || p[3] != "gw" || p[5] != customs.LeafStatus {
		return "", IgnoredWrongTopic
	}
	f.mu.Lock()
	_, ok := f.gws[p[4]]
	f.mu.Unlock()
	if !ok {
		return "", IgnoredUnknown
	}
	return p[4], ""
}

func (f *Fleet) handleHead(msg []byte) string {
	if len(f.opts.CentralKeys) == 0 {
		return notCounted // not verified, not used
	}
	payload, _, err := f.opts.CentralKeys.Open(msg)
	if err != nil {
		return envelope.Reason(err)
	}
	var h customs.Head
	if err := json.Unmarshal(payload, &h); err != nil {
		return IgnoredBadDocument
	}
	if h.Type != customs.TypeHead {
		return IgnoredWrongType
	}
	if h.Site != f.opts.Site {
		return IgnoredWrongSite
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if h.Seq >= f.head {
		f.head, f.headAt = h.Seq, h.At
	}
	f.trackLag(f.time.Now())
	return ""
}

// Levels of a row, worst first.
const (
	LevelAlarm = "alarm"
	LevelWarn  = "warn"
	LevelOK    = "ok"
)

// States of a row.
const (
	StateOnline  = "online"  // its last status says online, and is recent
	StateOffline = "offline" // its last status says offline (a clean stop, or its will)
	StateSilent  = "silent"  // online, but no status for OfflineAfter
	StateUnknown = "unknown" // configured, never seen
)

// Row is one gateway in the view. Ages are in seconds at the view's time;
// a nil one was not reported.
type Row struct {
	Gateway string `json:"gateway"`
	State   string `json:"state"`
	Level   string `json:"level"`
	// Alarm is true for the offline alarm: its status says offline, or it
	// has been silent (or never seen) for OfflineAfter.
	Alarm      bool       `json:"alarm"`
	Problems   []string   `json:"problems,omitempty"` // why it is not ok, short labels
	AppliedSeq uint64     `json:"applied_seq"`
	HeadSeq    uint64     `json:"head_seq"` // the head it last saw
	Lag        uint64     `json:"lag"`      // the site's head minus applied_seq
	Outbox     int        `json:"outbox"`
	OldestS    *float64   `json:"outbox_oldest_s"`
	Version    string     `json:"version"`
	Checkpoint *time.Time `json:"checkpoint_at"`
	CheckAgeS  *float64   `json:"checkpoint_age_s"`
	LastSeen   *time.Time `json:"last_seen"`
	SeenAgeS   *float64   `json:"last_seen_age_s"`
	StatusAt   *time.Time `json:"status_at"` // its own time in the last status
}

// View is the fleet at one instant.
type View struct {
	Site          string            `json:"site"`
	Connected     bool              `json:"connected"` // the fleet's own broker subscription is up
	At            time.Time         `json:"at"`
	Head          uint64            `json:"head_seq"`
	CentralHead   bool              `json:"head_from_central"` // Head is central's signed head
	OfflineAfterS float64           `json:"offline_after_s"`
	Gateways      []Row             `json:"gateways"`
	Alarms        int               `json:"alarms"`
	Online        int               `json:"online"`
	Accepted      uint64            `json:"statuses_accepted"`
	Ignored       map[string]uint64 `json:"statuses_ignored"`
}

// View returns every configured gateway, worst first: the offline alarms
// (offline, silent, never seen; the longest unseen first), then the
// warnings and then the healthy, each by lag, then by the oldest
// unacknowledged event, then the longest unseen; then by name.
func (f *Fleet) View() View {
	now := f.time.Now()
	var central uint64
	if f.opts.Head != nil {
		central = f.opts.Head()
	}
	f.mu.Lock()
	if central > f.head {
		f.head = central
	}
	v := View{Site: f.opts.Site, At: now.UTC(), Connected: f.connected.Load(), Head: f.trackLag(now), CentralHead: f.head > 0,
		OfflineAfterS: f.opts.OfflineAfter.Seconds(), Accepted: f.accepted, Ignored: map[string]uint64{}, Gateways: []Row{}}
	for k, n := range f.ignored {
		v.Ignored[k] = n
	}
	for name, g := range f.gws {
		v.Gateways = append(v.Gateways, f.row(name, g, v.Head, now))
	}
	f.mu.Unlock()
	for _, r := range v.Gateways {
		if r.Alarm {
			v.Alarms++
		}
		if r.State == StateOnline {
			v.Online++
		}
	}
	slices.SortFunc(v.Gateways, worse)
	return v
}

// trackLag returns the site's head and notes, for each gateway, since when
// it is behind it; f.mu held. Called at each status, head and view.
func (f *Fleet) trackLag(now time.Time) uint64 {
	head := f.head
	for _, g := range f.gws {
		if g.status != nil && f.head == 0 {
			// Without central's head, the highest a gateway saw; with it,
			// central's alone (a gateway's figure is only its word).
			head = max(head, g.status.HeadSeq)
		}
	}
	for _, g := range f.gws {
		switch {
		case g.status == nil || g.status.AppliedSeq >= head:
			g.behindSince = time.Time{}
		case g.behindSince.IsZero():
			g.behindSince = now
		}
	}
	return head
}

func secs(d time.Duration) *float64 {
	s := max(0, d.Seconds())
	return &s
}

func (f *Fleet) row(name string, g *gw, head uint64, now time.Time) Row {
	r := Row{Gateway: name, State: StateUnknown, Level: LevelOK}
	if g.status == nil {
		if now.Sub(f.start) >= f.opts.OfflineAfter {
			r.Alarm = true
			r.Problems = append(r.Problems, "never_seen")
		}
		r.Level = LevelWarn
		if r.Alarm {
			r.Level = LevelAlarm
		}
		return r
	}
	s := g.status
	seen, at := g.seen.UTC(), s.At.UTC()
	r.AppliedSeq, r.HeadSeq, r.Outbox, r.Version = s.AppliedSeq, s.HeadSeq, s.Outbox, s.Version
	r.LastSeen, r.SeenAgeS, r.StatusAt = &seen, secs(now.Sub(seen)), &at
	if head > s.AppliedSeq {
		r.Lag = head - s.AppliedSeq
	}
	if s.Outbox > 0 {
		// Its age when sent, plus the time since it was seen (in seconds:
		// a Duration would overflow on a huge one).
		o := max(0, s.OutboxOldest+now.Sub(g.seen).Seconds())
		r.OldestS = &o
	} else {
		r.OldestS = secs(0)
	}
	if s.CheckpointAt != nil {
		cp := s.CheckpointAt.UTC()
		r.Checkpoint, r.CheckAgeS = &cp, secs(now.Sub(cp))
	}
	switch {
	case s.State == "offline":
		r.State, r.Alarm = StateOffline, true
		r.Problems = append(r.Problems, "offline")
	case now.Sub(g.seen) >= f.opts.OfflineAfter:
		r.State, r.Alarm = StateSilent, true
		r.Problems = append(r.Problems, "silent")
	default:
		r.State = StateOnline
	}
	if g.oddAt.After(g.seen) {
		// Statuses keep coming that are older than one shown (its clock
		// went back, or a replay) or far ahead of ours.
		r.Problems = append(r.Problems, "clock_or_replay")
	}
	if r.Lag > 0 && now.Sub(g.behindSince) >= lagGrace {
		r.Problems = append(r.Problems, "lag")
	}
	if s.Outbox > 0 && *r.OldestS >= f.opts.OutboxWarn.Seconds() {
		r.Problems = append(r.Problems, "outbox_old")
	}
	switch {
	case r.Alarm:
		r.Level = LevelAlarm
	case len(r.Problems) > 0:
		r.Level = LevelWarn
	}
	return r
}

func levelRank(l string) int {
	switch l {
	case LevelAlarm:
		return 0
	case LevelWarn:
		return 1
	}
	return 2
}

func stateRank(s string) int {
	switch s {
	case StateOffline:
		return 0
	case StateSilent:
		return 1
	case StateUnknown:
		return 2
	}
	return 3
}

func f0(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// worse orders a before b when a is worse.
func worse(a, b Row) int {
	if c := cmp.Compare(levelRank(a.Level), levelRank(b.Level)); c != 0 {
		return c
	}
	if a.Level == LevelAlarm {
		// Among alarms: offline, then silent, then never seen; the
		// longest unseen first. Their lag is as old as their status.
		if c := cmp.Compare(stateRank(a.State), stateRank(b.State)); c != 0 {
			return c
		}
		if c := cmp.Compare(f0(b.SeenAgeS), f0(a.SeenAgeS)); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(b.Lag, a.Lag); c != 0 {
		return c
	}
	if c := cmp.Compare(f0(b.OldestS), f0(a.OldestS)); c != 0 {
		return c
	}
	if c := cmp.Compare(f0(b.SeenAgeS), f0(a.SeenAgeS)); c != 0 {
		return c
	}
	return cmp.Compare(a.Gateway, b.Gateway)
}
