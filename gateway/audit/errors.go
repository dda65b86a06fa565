package audit

import "errors"

var (
	// ErrLocked is returned by the *File functions when another process
	// (a running gateway) holds the log.
	ErrLocked = errors.New("audit: file locked by another process")

	errClosed   = errors.New("audit: closed")
	errRunTwice = errors.New("audit: Run called twice")
)
