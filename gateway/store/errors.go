package store

import "errors"

// ErrNewerSchema is returned by Open for a store written by a newer
// cargogate.
var ErrNewerSchema = errors.New("store written by a newer cargogate")

// ErrLocked is returned by Open when another process holds the store.
var ErrLocked = errors.New("store is in use by another process")

// errCorrupt: a subject state that does not decode; it decides STOP.
var errCorrupt = errors.New("store: corrupt subject state")
