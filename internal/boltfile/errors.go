package boltfile

import "errors"

// ErrLocked is returned when another process holds the file.
var ErrLocked = errors.New("file in use by another process")
