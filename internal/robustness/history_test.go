package robustness

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// A history is a list of operations on one gateway, made up front from a
// seed (so a failure replays, and shrinks by dropping operations).

type opKind int

const (
	opIssue     opKind = iota // central records orders (lookups answer from them)
	opDeliver                 // messages handed to the gateway, in this order
	opKill                    // messages ingested by a child process, SIGKILLed after KillAfter acks
	opClock                   // the wall clock (and the true time) move
	opRetention               // retention runs with orders_days Days
	opRestart                 // the gateway stops and starts again
	opReload                  // configuration reloaded: parcel pattern LP, trusted central keys
	opOutbox                  // the outbox stops draining (Block) or drains again
	opOnline                  // the link to the broker goes up or down
	opDecide                  // subjects scanned at the gate station
)

var opNames = map[opKind]string{opIssue: "issue", opDeliver: "deliver", opKill: "kill-9", opClock: "clock",
	opRetention: "retention", opRestart: "restart", opReload: "reload", opOutbox: "outbox", opOnline: "online", opDecide: "decide"}

type op struct {
	Kind      opKind
	Orders    []wOrder // opIssue
	Msgs      []*msg   // opDeliver, opKill
	KillAfter int      // opKill
	True      time.Time
	Wall      time.Time // opClock
	Days      int       // opRetention
	LP        bool      // opReload: the parcel pattern LP[0-9]{14} is configured
	Kids      []string  // opReload: trusted central keys
	Block     bool      // opOutbox
	Online    bool      // opOnline
	Subjects  []customs.Subject
	Lookup    string // opDecide: how central answers a lookup: answer, late, silent
}

func (o *op) String() string {
	s := opNames[o.Kind]
	switch o.Kind {
	case opIssue:
		var x []string
		for _, w := range o.Orders {
			x = append(x, w.String())
		}
		s += " " + strings.Join(x, "; ")
	case opDeliver, opKill:
		if o.Kind == opKill {
			s += fmt.Sprintf(" (killed after %d acks)", o.KillAfter)
		}
		for _, m := range o.Msgs {
			s += "\n      " + m.String()
		}
	case opClock:
		s += fmt.Sprintf(" true %s wall %s", o.True.Format(time.RFC3339), o.Wall.Format(time.RFC3339))
	case opRetention:
		s += fmt.Sprintf(" orders_days %d", o.Days)
	case opReload:
		s += fmt.Sprintf(" LP %v keys %v", o.LP, o.Kids)
	case opOutbox:
		s += fmt.Sprintf(" blocked %v", o.Block)
	case opOnline:
		s += fmt.Sprintf(" %v", o.Online)
	case opDecide:
		var x []string
		for _, v := range o.Subjects {
			x = append(x, v.String())
		}
		s += fmt.Sprintf(" lookup=%s %s", o.Lookup, strings.Join(x, " "))
	}
	return s
}

// wOrder is an order on the wire, possibly out of form (Bad).
type wOrder struct {
	O customs.Order
	// Bad: "" (well formed); cosmetic: "office", "ref", "note", "extra"
	// (an unknown field); "reason" (a hold reason not listed); cannot be
	// applied: "action", "subject", "child", "seq0", "unreadable".
	Bad string
}

func (w wOrder) String() string {
	s := model(w).String()
	if w.Bad != "" {
		s += " {" + w.Bad + "}"
	}
	return s
}

// applicable reports whether amendment 2 applies the order.
func (w wOrder) applicable() bool {
	switch w.Bad {
	case "action", "subject", "child", "seq0", "unreadable":
		return false
	}
	return true
}

// model is the order as amendment 2 reads it.
func model(w wOrder) mOrder {
	o := w.O
	m := mOrder{Seq: o.Seq, Action: string(o.Action), Subject: o.Subject, HoldID: o.HoldID, Reason: o.Reason,
		Expires: o.ExpiresAt, Children: o.Children}
	if w.Bad == "reason" {
		m.Reason = "other"
	}
	return m
}

// raw is the order's JSON as central sends it.
func (w wOrder) raw() json.RawMessage {
	b, err := json.Marshal(w.O)
	if err != nil {
		panic(err)
	}
	if w.Bad == "" {
		return b
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	switch w.Bad {
	case "office":
		m["office"] = "22A4"
	case "ref":
		m["ref"] = strings.Repeat("R", 80)
	case "note":
		m["note"] = strings.Repeat("n", 300)
	case "extra":
		m["priority"] = map[string]any{"level": 3}
	case "reason":
		m["reason"] = "quarantine"
	case "action":
		m["action"] = "embargo"
	case "subject":
		m["subject"] = map[string]any{"kind": "box", "id": "bad id!"}
	case "child":
		kids := m["children"].([]any)
		kids[len(kids)-1] = map[string]any{"kind": "parcel", "id": "rr-lower"}
	case "seq0":
		m["seq"] = 0
	case "unreadable":
		m["subject"] = "parcel:" + w.O.Subject.ID
	}
	b, err = json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// msg is one MQTT message to the gateway.
type msg struct {
	Topic     string // "orders", "replay", "lookup", "head"
	Kid       string
	Corrupt   string // "": good; "sig", "site", "type": rejected whole
	Orders    []wOrder
	Head      uint64
	At        time.Time
	RequestID string
}

func (m *msg) String() string {
	s := m.Topic + " kid=" + m.Kid
	if m.Corrupt != "" {
		s += " corrupt=" + m.Corrupt
	}
	if m.Topic == "head" {
		return s + fmt.Sprintf(" head %d at %s", m.Head, m.At.Format(time.RFC3339))
	}
	var x []string
	for _, w := range m.Orders {
		x = append(x, w.String())
	}
	return s + " [" + strings.Join(x, "; ") + "]"
}

func (m *msg) clone() *msg {
	c := *m
	c.Orders = slices.Clone(m.Orders)
	return &c
}

// history is one generated history.
type history struct {
	Net      map[string]int // network faults made: duplicated, delayed, dropped, ...
	Seed     uint64
	Ops      []op
	Subjects []customs.Subject
}
