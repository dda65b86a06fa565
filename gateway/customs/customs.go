// Package customs is the vocabulary of the contract with central customs
// (PROTOCOL.md §3): subjects, orders, events and the other documents, as they
// travel on the wire. It holds types and their validation, nothing else.
package customs

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"
)

// Kind is the kind of a subject.
type Kind string

// The subject kinds of §3.
const (
	Parcel  Kind = "parcel"
	Bag     Kind = "bag"
	ULD     Kind = "uld"
	AWB     Kind = "awb"
	Transit Kind = "transit"
)

// Valid reports whether k is one of the five kinds.
func (k Kind) Valid() bool {
	switch k {
	case Parcel, Bag, ULD, AWB, Transit:
		return true
	}
	return false
}

// Container reports whether subjects of kind k may have children.
func (k Kind) Container() bool {
	switch k {
	case Bag, ULD, AWB, Transit:
		return true
	}
	return false
}

// Subject is a thing customs decides on: {"kind": K, "id": ID}.
type Subject struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
}

func (s Subject) String() string { return string(s.Kind) + ":" + s.ID }

// idRE is ^[A-Z0-9]{1,64}$, matched without regexp (it runs for every
// subject of every order received; TestShapesMatchTheirPatterns).
var idRE = shape{max: 64, upper: true, digit: true}

// Validate checks the kind and the shape of a normalized id (§7: upper case
// letters and digits).
func (s Subject) Validate() error {
	if !s.Kind.Valid() {
		return fmt.Errorf("subject kind %q: unknown", s.Kind)
	}
	if !idRE.MatchString(s.ID) {
		return fmt.Errorf("subject id %q: not a normalized identifier", s.ID)
	}
	return nil
}

// Action is what an order does.
type Action string

// The actions of §3.
const (
	Release Action = "release"
	Revoke  Action = "revoke"
	Hold    Action = "hold"
	Unhold  Action = "unhold"
	Cancel  Action = "cancel"
	Link    Action = "link"
	Unlink  Action = "unlink"
	Seal    Action = "seal"
)

// Hold reasons of §3.
var HoldReasons = []string{"inspection", "do_not_load", "detention", "information", "other"}

// Limits of §2 and §3.
const (
	MaxEnvelopeBytes = 1 << 20
	MaxOrders        = 10000
	MaxChildren      = 10000
	MaxSeals         = 16
	MaxEvents        = 1000
	MaxHoldIDLen     = 64
)

// Order is one customs order (§3).
type Order struct {
	Seq       uint64    `json:"seq"`
	Action    Action    `json:"action"`
	Subject   Subject   `json:"subject"`
	IssuedAt  time.Time `json:"issued_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	HoldID    string    `json:"hold_id,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Children  []Subject `json:"children,omitempty"`
	Seals     []string  `json:"seals,omitempty"`
	Office    string    `json:"office,omitempty"`
	Ref       string    `json:"ref,omitempty"`
	Note      string    `json:"note,omitempty"`
	// ReasonText is not a field of §3: a gateway keeps here, for the
	// screens, the reason of a hold received with a reason not in the list
	// (Normalize, amendment 2); Reason is then "other". Normalize clears
	// whatever arrived under this name, and Validate refuses it.
	ReasonText string `json:"reason_text,omitempty"`
}

var (
	officeRE = shape{min: 4, max: 4, digit: true}                   // ^[0-9]{4}$
	sealRE   = shape{max: 32, upper: true, digit: true, dash: true} // ^[A-Z0-9-]{1,32}$
)

// Validate checks an order as central must have issued it: every field in
// form. seqRequired is false for orders submitted to central, which assigns
// the seq itself. Central issues only orders that pass it; a gateway reads
// what it receives with Normalize instead (amendment 2).
func (o *Order) Validate(seqRequired bool) error {
	errs := o.decidingErrs(seqRequired)
	if o.Action == Hold && !validHoldReason(o.Reason) {
		errs = append(errs, fmt.Errorf("reason %q: must be one of %v", o.Reason, HoldReasons))
	}
	if o.ReasonText != "" {
		errs = append(errs, errors.New("reason_text: set by a gateway, not a field of §3"))
	}
	for _, d := range o.formProblems() {
		errs = append(errs, errors.New(d.Why))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("order seq %d: %w", o.Seq, err)
	}
	return nil
}

// Dropped is what Normalize set aside in a received order: a field out of
// form that decides nothing (office, ref, note, issued_at), or a hold
// reason not in the list (applied as "other").
type Dropped struct {
	Field string `json:"field"`
	// Value is the field as received: its JSON text when it was not a
	// string, cut to MaxDroppedValue bytes.
	Value string `json:"value"`
	Why   string `json:"why"`
}

// MaxDroppedValue bounds Dropped.Value (and the reason text a hold keeps):
// a message may carry a megabyte in a note, the audit log and the state
// need not.
const MaxDroppedValue = 512

// MaxReasonText bounds the unlisted reason a hold keeps for the screens.
const MaxReasonText = 64

// Normalize makes a received order applicable as amendment 2 says, in
// place: each order stands on its own. A field that decides nothing and is
// out of form (office, ref, note) is dropped, and a hold whose reason is not
// in the list becomes a hold with reason "other", its text kept in
// ReasonText; each is reported in the list returned. The error says why the
// order cannot be applied at all (seq 0, an unknown action, a subject,
// child, hold_id, children or seals that cannot be read): its seq stays a
// gap.
func (o *Order) Normalize() ([]Dropped, error) {
	o.ReasonText = "" // the gateway's own field: never taken from the wire
	if err := errors.Join(o.decidingErrs(true)...); err != nil {
		return nil, fmt.Errorf("order seq %d: %w", o.Seq, err)
	}
	drops := o.formProblems()
	for _, d := range drops {
		switch d.Field {
		case "office":
			o.Office = ""
		case "ref":
			o.Ref = ""
		case "note":
			o.Note = ""
		}
	}
	if o.Action == Hold && !validHoldReason(o.Reason) {
		drops = append(drops, Dropped{Field: "reason", Value: cut(o.Reason, MaxDroppedValue),
			Why: fmt.Sprintf("hold reason %q is not one of %v: applied as %q", cut(o.Reason, MaxReasonText), HoldReasons, "other")})
		o.ReasonText = cut(o.Reason, MaxReasonText)
		o.Reason = "other"
	}
	return drops, nil
}

// decidingErrs checks the fields that decide: seq, subject, action and the
// action's own fields. expires_at, once read, is always in form.
func (o *Order) decidingErrs(seqRequired bool) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if seqRequired && o.Seq < 1 {
		add("seq: must be ≥ 1")
	}
	if err := o.Subject.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch o.Action {
	case Release, Revoke, Cancel:
	case Hold, Unhold:
		if o.HoldID == "" || len(o.HoldID) > MaxHoldIDLen {
			add("hold_id: must be 1..%d characters", MaxHoldIDLen)
		}
	case Link, Unlink:
		if !o.Subject.Kind.Container() {
			add("subject kind %q: cannot hold children", o.Subject.Kind)
		}
		if len(o.Children) == 0 || len(o.Children) > MaxChildren {
			add("children: must be 1..%d subjects", MaxChildren)
		}
		for i, c := range o.Children {
			if err := c.Validate(); err != nil {
				add("children[%d]: %w", i, err)
				break
			}
			if c == o.Subject {
				add("children[%d]: a subject cannot contain itself", i)
				break
			}
		}
	case Seal:
		if o.Subject.Kind != Transit {
			add("seal: only a transit has seals")
		}
		if len(o.Seals) == 0 || len(o.Seals) > MaxSeals {
			add("seals: must be 1..%d seal ids", MaxSeals)
		}
		for i, s := range o.Seals {
			if !sealRE.MatchString(s) {
				add("seals[%d] %q: must match [A-Z0-9-]{1,32}", i, s)
				break
			}
		}
	default:
		add("action %q: unknown", o.Action)
	}
	return errs
}

// formProblems lists office, ref and note out of form (§3).
func (o *Order) formProblems() []Dropped {
	var out []Dropped
	if o.Office != "" && !officeRE.MatchString(o.Office) {
		out = append(out, Dropped{Field: "office", Value: cut(o.Office, MaxDroppedValue), Why: fmt.Sprintf("office %q: must be 4 digits", cut(o.Office, 32))})
	}
	if utf8.RuneCountInString(o.Ref) > 64 {
		out = append(out, Dropped{Field: "ref", Value: cut(o.Ref, MaxDroppedValue), Why: "ref: longer than 64 characters"})
	}
	if utf8.RuneCountInString(o.Note) > 256 {
		out = append(out, Dropped{Field: "note", Value: cut(o.Note, MaxDroppedValue), Why: "note: longer than 256 characters"})
	}
	return out
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// wireOrder is an order as received, read leniently: the fields that
// decide for every order typed, so a value of the wrong type makes the
// order unappliable, and the others raw: a field the order's action uses
// (expires_at of a release, hold_id of a hold or unhold, children of a
// link or unlink, seals of a seal) that cannot be read makes it
// unappliable too, and one it does not use, or that decides nothing, is
// only dropped.
type wireOrder struct {
	Seq       uint64          `json:"seq"`
	Action    Action          `json:"action"`
	Subject   Subject         `json:"subject"`
	IssuedAt  json.RawMessage `json:"issued_at"`
	ExpiresAt json.RawMessage `json:"expires_at"`
	HoldID    json.RawMessage `json:"hold_id"`
	Reason    json.RawMessage `json:"reason"`
	Children  json.RawMessage `json:"children"`
	Seals     json.RawMessage `json:"seals"`
	Office    json.RawMessage `json:"office"`
	Ref       json.RawMessage `json:"ref"`
	Note      json.RawMessage `json:"note"`
}

// uses reports whether action a reads field (one of expires_at, hold_id,
// children, seals).
func (a Action) uses(field string) bool {
	switch field {
	case "expires_at":
		return a == Release
	case "hold_id":
		return a == Hold || a == Unhold
	case "children":
		return a == Link || a == Unlink
	case "seals":
		return a == Seal
	}
	return false
}

// DecodeOrder reads one order of a received orders document (amendment 2)
// whose JSON is known to parse, and normalizes it (see Normalize). A field
// that decides nothing and has the wrong type is dropped like one out of
// form; so is an issued_at that is not an RFC 3339 time (it only raises the
// time floor, never decides a PASS). A deciding field that cannot be read
// makes the error. The order returned carries the seq whenever it could be
// read, error or not (0: unknown).
func DecodeOrder(raw []byte) (Order, []Dropped, error) {
	var w wireOrder
	if err := json.Unmarshal(raw, &w); err != nil {
		return Order{Seq: w.Seq}, nil, fmt.Errorf("order seq %d: %w", w.Seq, err)
	}
	o := Order{Seq: w.Seq, Action: w.Action, Subject: w.Subject}
	var drops []Dropped
	// A field of the action's own that cannot be read makes the order
	// unappliable; one the action does not use is dropped (a hold is
	// applied whatever its expires_at says).
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		read func([]byte) error
	}{
		{"expires_at", w.ExpiresAt, func(b []byte) error { return o.ExpiresAt.UnmarshalJSON(b) }},
		{"hold_id", w.HoldID, func(b []byte) error { return json.Unmarshal(b, &o.HoldID) }},
		{"children", w.Children, func(b []byte) error { return json.Unmarshal(b, &o.Children) }},
		{"seals", w.Seals, func(b []byte) error { return json.Unmarshal(b, &o.Seals) }},
	} {
		if len(f.raw) == 0 || string(f.raw) == "null" {
			continue
		}
		if err := f.read(f.raw); err != nil {
			if w.Action.uses(f.name) {
				return Order{Seq: w.Seq}, nil, fmt.Errorf("order seq %d: %s: %w", w.Seq, f.name, err)
			}
			switch f.name {
			case "expires_at":
				o.ExpiresAt = time.Time{}
			case "hold_id":
				o.HoldID = ""
			case "children":
				o.Children = nil
			case "seals":
				o.Seals = nil
			}
			drops = append(drops, Dropped{Field: f.name, Value: cut(string(f.raw), MaxDroppedValue),
				Why: fmt.Sprintf("%s: cannot be read, and a %s does not use it; the order is applied without it", f.name, cut(string(w.Action), 32))})
		}
	}
	text := func(field string, r json.RawMessage) string {
		if len(r) == 0 || string(r) == "null" {
			return ""
		}
		var s string
		if json.Unmarshal(r, &s) != nil {
			drops = append(drops, Dropped{Field: field, Value: cut(string(r), MaxDroppedValue), Why: field + ": not a string"})
			return ""
		}
		return s
	}
	o.Office, o.Ref, o.Note = text("office", w.Office), text("ref", w.Ref), text("note", w.Note)
	if len(w.Reason) > 0 && string(w.Reason) != "null" {
		if json.Unmarshal(w.Reason, &o.Reason) != nil {
			// Not a string: for a hold, an unlisted reason (Normalize makes
			// it "other" and keeps this text); elsewhere it meant nothing.
			o.Reason = string(w.Reason)
			if o.Action != Hold {
				drops = append(drops, Dropped{Field: "reason", Value: cut(o.Reason, MaxDroppedValue), Why: "reason: not a string"})
				o.Reason = ""
			}
		}
	}
	if len(w.IssuedAt) > 0 && string(w.IssuedAt) != "null" {
		if err := o.IssuedAt.UnmarshalJSON(w.IssuedAt); err != nil {
			o.IssuedAt = time.Time{}
			drops = append(drops, Dropped{Field: "issued_at", Value: cut(string(w.IssuedAt), MaxDroppedValue),
				Why: "issued_at: not an RFC 3339 time; the order is applied without it"})
		}
	}
	more, err := o.Normalize()
	if err != nil {
		return Order{Seq: o.Seq}, nil, err
	}
	return o, append(drops, more...), nil
}

func validHoldReason(r string) bool {
	for _, h := range HoldReasons {
		if r == h {
			return true
		}
	}
	return false
}

// Document types (the "type" field).
const (
	TypeOrders     = "orders"
	TypeHead       = "head"
	TypeResync     = "resync"
	TypeReplayDone = "replay_done"
	TypeLookup     = "lookup"
	TypeEvents     = "events"
	TypeEventsAck  = "events_ack"
	TypeStatus     = "status"
)

// Orders is the orders document.
type Orders struct {
	Type      string  `json:"type"`
	Site      string  `json:"site"`
	RequestID string  `json:"request_id,omitempty"`
	Orders    []Order `json:"orders"`
}

// Head is central's highest assigned seq.
type Head struct {
	Type string    `json:"type"`
	Site string    `json:"site"`
	Seq  uint64    `json:"seq"`
	At   time.Time `json:"at"`
}

// Resync asks central to replay orders from FromSeq to ToSeq (0: up to head).
type Resync struct {
	Type      string `json:"type"`
	Site      string `json:"site"`
	Gateway   string `json:"gateway"`
	RequestID string `json:"request_id"`
	FromSeq   uint64 `json:"from_seq"`
	ToSeq     uint64 `json:"to_seq"`
}

// ReplayDone ends a replay.
type ReplayDone struct {
	Type      string `json:"type"`
	Site      string `json:"site"`
	RequestID string `json:"request_id"`
	UpTo      uint64 `json:"up_to"`
}

// Lookup asks central for every order on a subject and its containers.
type Lookup struct {
	Type      string  `json:"type"`
	Site      string  `json:"site"`
	Gateway   string  `json:"gateway"`
	RequestID string  `json:"request_id"`
	Subject   Subject `json:"subject"`
}

// Event kinds.
const (
	EventScan    = "scan"
	EventDevice  = "device"
	EventArrival = "arrival"
)

// Decision values.
const (
	Pass = "pass"
	Stop = "stop"
)

// Reasons of §3 (held reasons are "held:" + hold reason).
const (
	ReasonReleased    = "released"
	ReasonCancelled   = "cancelled"
	ReasonContents    = "contents"
	ReasonRevoked     = "revoked"
	ReasonExpired     = "expired"
	ReasonUnknown     = "unknown"
	ReasonInvalidCode = "invalid_code"
	ReasonError       = "error"
	ReasonHeldPrefix  = "held:"
)

// Event is one scan, device or arrival event (§3, §9). Fields not of its
// kind stay empty and are omitted.
type Event struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	Station string    `json:"station"`
	Role    string    `json:"role,omitempty"`
	At      time.Time `json:"at"`

	// scan
	Code       string   `json:"code,omitempty"`
	Subject    *Subject `json:"subject,omitempty"`
	Decision   string   `json:"decision,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	BasisSeq   uint64   `json:"basis_seq,omitempty"`
	AppliedSeq *uint64  `json:"applied_seq,omitempty"`
	Offline    *bool    `json:"offline,omitempty"`

	// device
	Device string `json:"device,omitempty"`
	State  string `json:"state,omitempty"`
	Detail string `json:"detail,omitempty"`

	// arrival
	// (omitzero keeps an empty list, which an arrival event shows as [])
	Transit       *Subject  `json:"transit,omitempty"`
	SealsExpected []string  `json:"seals_expected,omitzero"`
	SealsSeen     []string  `json:"seals_seen,omitzero"`
	SealsOK       *bool     `json:"seals_ok,omitempty"`
	Expected      *int      `json:"expected,omitempty"`
	Counted       *int      `json:"counted,omitempty"`
	Missing       []Subject `json:"missing,omitzero"`
	Extra         []Subject `json:"extra,omitzero"`

	// checkpoint (a v1 extension, docs/protocol.md)
	Checkpoint *AuditCheckpoint `json:"checkpoint,omitempty"`
}

// EventCheckpoint is the kind of an audit checkpoint event: the gateway's
// signed statement of its audit log's size and head, sent at least every
// minute so that central holds proof of what the log was.
const EventCheckpoint = "checkpoint"

// AuditCheckpoint is the signed head of a gateway's audit hash chain.
type AuditCheckpoint struct {
	Size uint64    `json:"size"`
	Head string    `json:"head"`
	At   time.Time `json:"at"`
	Kid  string    `json:"kid"`
	Sig  string    `json:"sig"`
}

// Status is the gateway's retained status and will.
type Status struct {
	Type       string    `json:"type"`
	Site       string    `json:"site"`
	Gateway    string    `json:"gateway"`
	State      string    `json:"state"`
	AppliedSeq uint64    `json:"applied_seq"`
	HeadSeq    uint64    `json:"head_seq"`
	Outbox     int       `json:"outbox"`
	Version    string    `json:"version"`
	At         time.Time `json:"at"`
	// Additions for the fleet view (unknown fields are ignored, §3):
	// OutboxOldest is the age in seconds, at At, of the oldest event not
	// yet acknowledged by central (0: none); CheckpointAt the time of the
	// gateway's last signed audit checkpoint (absent: none yet).
	OutboxOldest float64    `json:"outbox_oldest_s"`
	CheckpointAt *time.Time `json:"checkpoint_at,omitempty"`
}

// Probe reads only the type and site of a document, so a receiver can route
// it before decoding the rest.
type Probe struct {
	Type string `json:"type"`
	Site string `json:"site"`
}

// ReadProbe decodes the type and site of a payload.
func ReadProbe(payload []byte) (Probe, error) {
	var p Probe
	if err := json.Unmarshal(payload, &p); err != nil {
		return p, fmt.Errorf("payload: %w", err)
	}
	return p, nil
}

// Topics of §1.
func OrdersTopic(site string) string { return "customs/v1/" + site + "/orders" }
func HeadTopic(site string) string   { return "customs/v1/" + site + "/head" }
func GatewayTopic(site, gateway, leaf string) string {
	return "customs/v1/" + site + "/gw/" + gateway + "/" + leaf
}

// Gateway topic leaves.
const (
	LeafResync      = "resync"
	LeafReplay      = "replay"
	LeafLookup      = "lookup"
	LeafLookupReply = "lookup/reply"
	LeafEvents      = "events"
	LeafEventsAck   = "events/ack"
	LeafStatus      = "status"
)

// NameRE is the shape of site and gateway names (§1).
var NameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
