// Package scan holds what one decided scan is (Outcome): the station makes
// it, the screens and metrics show it. It is a types-only leaf, below both.
package scan

import (
	"time"

	"github.com/cargogate/cargogate/gateway/arrival"
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

// Outcome is one decided scan, as shown on the screens. At an arrival
// station a seal scan (Kind "seal") is not decided, and a closing transit
// makes an outcome of Kind "arrival" carrying its event.
type Outcome struct {
	Kind     string           `json:"kind"` // "scan", "seal", "arrival" or "transit" (an open transit shown again after a restart)
	Station  string           `json:"station"`
	Role     string           `json:"role"`
	EventID  string           `json:"event_id"`
	At       time.Time        `json:"at"`
	Code     string           `json:"code"`
	Subject  *customs.Subject `json:"subject,omitempty"`
	Pass     bool             `json:"pass"`
	Reason   string           `json:"reason"`
	Problem  string           `json:"problem,omitempty"` // why a code is invalid, or what failed
	BasisSeq uint64           `json:"basis_seq,omitempty"`
	Items    int              `json:"items,omitempty"`
	Blocking []rules.Blocked  `json:"blocking,omitempty"`
	Chain    []rules.Step     `json:"chain,omitempty"`
	Offline  bool             `json:"offline"`
	Gate     string           `json:"gate"` // "opened", "closed", "fault" (not told: stays closed), "unknown" (may have opened), "none"
	Latency  time.Duration    `json:"latency_ns"`
	// Ref is the read's Ref (a handheld's scan id), empty for fixed scanners.
	Ref string `json:"ref,omitempty"`

	Seal    string         `json:"seal,omitempty"`    // the seal scanned (Kind "seal")
	Transit *arrival.View  `json:"transit,omitempty"` // the open transit after this scan (arrival stations)
	Arrival *customs.Event `json:"arrival,omitempty"` // the arrival event (Kind "arrival")
}
