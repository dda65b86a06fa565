package central

import "errors"

var (
	// ErrInvalidOrder: an order given to Issue (or read by ParseOrders) is not
	// one central may issue. Nothing was issued.
	ErrInvalidOrder = errors.New("invalid order")
	// ErrNoOrders: Issue was given nothing to issue.
	ErrNoOrders = errors.New("no orders")
	// ErrNotConnected: the broker connection is down (publishing only; the
	// ledger does not need it).
	ErrNotConnected = errors.New("not connected to the broker")
)

// Rejection labels counted in Stats.Rejected, besides the envelope's
// (too_large, malformed, unknown_kid, bad_signature; see envelope.Reason).
const (
	RejectWrongTopic   = "wrong_topic"   // not a gateway topic of this site
	RejectWrongKid     = "wrong_kid"     // signed by another gateway's key
	RejectWrongSite    = "wrong_site"    // document's site is not ours
	RejectWrongType    = "wrong_type"    // document type not meant for the topic
	RejectWrongGateway = "wrong_gateway" // document's gateway is not the topic's
	RejectBadDocument  = "bad_document"  // payload does not parse or is invalid
	RejectTooMany      = "too_many"      // more events than §3 allows
)

// ErrUnchecked says that a decision's window has too many combinations to
// try; the decision is neither confirmed nor refuted.
var ErrUnchecked = errors.New("too many orders on the family within the window to check")
