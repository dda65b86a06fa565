package envelope

import "errors"

// Sentinel errors of Open, checked with errors.Is. Each rejection of §2 maps
// to exactly one of them; Reason turns them into short labels.
var (
	// ErrTooLarge: the envelope, as received, is larger than
	// customs.MaxEnvelopeBytes.
	ErrTooLarge = errors.New("envelope larger than 1 MiB")
	// ErrMalformed: not a well-formed envelope (JSON shape, base64, lengths).
	ErrMalformed = errors.New("malformed envelope")
	// ErrUnknownKey: the kid is not in the keyring.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrBadSignature: the signature does not verify over the payload.
	ErrBadSignature = errors.New("bad signature")
)

// Rejection labels returned by Reason, used as counter names and in the
// audit log.
const (
	ReasonTooLarge     = "too_large"
	ReasonMalformed    = "malformed"
	ReasonUnknownKid   = "unknown_kid"
	ReasonBadSignature = "bad_signature"
	ReasonOther        = "other"
)

// Reason gives the short label of an error returned by Open: too_large,
// malformed, unknown_kid or bad_signature; "" for nil and "other" for
// anything else.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, ErrMalformed):
		return ReasonMalformed
	case errors.Is(err, ErrUnknownKey):
		return ReasonUnknownKid
	case errors.Is(err, ErrBadSignature):
		return ReasonBadSignature
	}
	return ReasonOther
}
