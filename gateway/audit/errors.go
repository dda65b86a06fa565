package audit

import "errors"

var (
	errClosed   = errors.New("audit: closed")
	errRunTwice = errors.New("audit: Run called twice")
)
