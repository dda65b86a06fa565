package link

import "errors"

// ErrOffline is returned by Lookup when the link is down.
var ErrOffline = errors.New("link: offline")
