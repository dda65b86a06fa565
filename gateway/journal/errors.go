package journal

import "errors"

var (
	// ErrFull is returned by Append when the outbox holds its configured
	// limit of events or bytes. The event is not recorded.
	ErrFull = errors.New("journal: outbox full")
	// ErrTooLarge is returned by Append for an event longer than the
	// journal's log can hold in one record (64 MiB). It is not recorded.
	ErrTooLarge = errors.New("journal: event too large")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("journal: closed")
	// ErrLocked is returned by Open when another process holds the file
	// (another gateway on the same data_dir).
	ErrLocked = errors.New("journal: file locked by another process")

	errRunTwice = errors.New("journal: Run called twice")
	errNotLog   = errors.New("journal: not a journal log (wrong header)")
)
