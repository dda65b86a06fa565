// Package robustness holds the model-based robustness test of the gateway
// (its code is all in test files): random histories of customs orders,
// delivered duplicated, reordered, replayed, split and partly malformed,
// with faults between the steps (retention, wall clock jumps, kill -9 and
// restart, reload, a full outbox, late lookups). After every step a sample
// of subjects is decided through the real gateway path and compared with an
// oracle of PROTOCOL §4 written here, separately from gateway/rules. A PASS
// the oracle does not give fails the test with a shrunk reproducer.
//
//	go test -race ./internal/robustness/                     # short form
//	go test -count=1 -timeout 60m ./internal/robustness/ -long  # ≥ 10⁶ decisions
package robustness
