package main

import (
	"github.com/cargogate/cargogate/gateway/arrival"
	"github.com/cargogate/cargogate/gateway/clock"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/station"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/link"
	"github.com/cargogate/cargogate/sync/outbox"
)

// The concrete parts main wires satisfy the small interfaces that consume
// them, checked when the gateway is built rather than where it is wired.
// They live here because only main imports both sides: the consumers
// (station, arrival, link, outbox) must not import the storage packages.
var (
	_ station.Decider = (*store.Store)(nil)
	_ station.Journal = (*journal.Journal)(nil)
	_ station.Link    = (*link.Link)(nil)
	_ station.Clock   = (*clock.Clock)(nil)

	_ arrival.Persister = (*journal.Journal)(nil)
	_ arrival.Contents  = (*store.Store)(nil)

	_ link.Store  = (*store.Store)(nil)
	_ link.Outbox = (*journal.Journal)(nil)
	_ link.Clock  = (*clock.Clock)(nil)

	_ link.OutboxHealth = (*journal.Journal)(nil)
	_ outbox.Afterer    = (*journal.Journal)(nil)
)
