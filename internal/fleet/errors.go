package fleet

import "errors"

var (
	// ErrBadName: a site or gateway name is not [A-Za-z0-9_-]{1,64}.
	ErrBadName = errors.New("must match [A-Za-z0-9_-]{1,64}")
	// ErrBadKey: a gateway's public key is not a 32-byte Ed25519 key.
	ErrBadKey = errors.New("not a 32-byte Ed25519 public key")
)
