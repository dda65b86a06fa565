// Package persist holds the types at the interfaces of the gateway's two
// durable stores, the order store (gateway/store) and the event journal
// (gateway/journal). Their consumers on the link side (sync/link,
// sync/outbox) are written against these types and small interfaces of
// their own, so they depend neither on the stores nor on bbolt; the stores
// name these types as their own (type aliases), so *store.Store and
// *journal.Journal satisfy those interfaces as they are.
//
// It is a leaf: it imports gateway/customs and the standard library only.
package persist

import (
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// Batch is what one commit of the order store applies.
type Batch struct {
	Orders []customs.Order
	// Raw, when not nil, holds each order's JSON as received, index for
	// index with Orders; the seq log stores it as it is instead of
	// marshalling the order again. Raw[i] must decode to Orders[i].
	Raw [][]byte
	// Head, if above the stored head, is stored with the batch.
	Head uint64
	// Floor, if after the stored time floor, is stored with the batch.
	Floor time.Time
	// Wall, the latest wall clock reading (clock.Now), if after the stored
	// one, is stored with the batch.
	Wall time.Time
}

// Conflict is an order whose seq was applied before with other content.
type Conflict struct {
	Seq uint64
	// Kept and Ignored are the two orders' JSON.
	Kept, Ignored []byte
}

// Result tells what a commit of the order store did.
type Result struct {
	Applied    int // orders new to the store
	Duplicates int // orders already applied with the same content
	Conflicts  []Conflict
	Watermark  uint64 // after the commit
	MaxSeq     uint64 // highest seq in the store after the commit
	Head       uint64
}

// Progress is the order store's view of where it stands against central.
type Progress struct {
	Watermark uint64    // every seq ≤ Watermark is applied
	MaxSeq    uint64    // the highest seq applied
	Head      uint64    // the highest head stored
	Floor     time.Time // the newest central time stored
	Wall      time.Time // the latest wall clock reading stored
}

// Entry is one journalled event.
type Entry struct {
	Seq  uint64 // position in the journal, ascending in decision order
	Data []byte // the event's JSON
}

// OutboxHealth is the event journal's state for status pages and readiness.
type OutboxHealth struct {
	Events    int     `json:"events"`     // undelivered events
	Bytes     int64   `json:"bytes"`      // their JSON bytes
	MaxEvents int     `json:"max_events"` // 0: no bound
	MaxBytes  int64   `json:"max_bytes"`  // 0: no bound
	Fill      float64 `json:"fill_percent"`
	// Alarm is set while Fill ≥ AlarmPercent: the outbox is nearly full.
	Alarm        bool `json:"alarm"`
	AlarmPercent int  `json:"alarm_percent"`
	// Refused counts appends refused because the outbox was full, and
	// Failed appends whose commit failed, since the journal was opened.
	Refused uint64 `json:"refused"`
	Failed  uint64 `json:"failed"`
	// Writable is false while the last commit failed; LastError says why.
	Writable  bool   `json:"writable"`
	LastError string `json:"last_error,omitempty"`
}
