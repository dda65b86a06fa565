package link

import "errors"

// ErrOffline is returned by Lookup when the link is down.
var ErrOffline = errors.New("link: offline")

// errNoBroker is returned by Run when Options name no broker.
var errNoBroker = errors.New("link: no broker URL")
