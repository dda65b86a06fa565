package envelope

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open. Invariants: no panic; an error is
// one of the four sentinels; an accepted message is a JSON envelope whose
// signature verifies over the returned payload with the key of its kid. The
// seed corpus in testdata/fuzz/FuzzOpen holds envelopes sealed by testKey(1)
// and testKey(2) under the kids below, so mutations start from valid input.
func FuzzOpen(f *testing.F) {
	k := ring(signerA, signerB)
	f.Add([]byte(`{"kid":"central-2026a","payload":"e30=","sig":""}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		payload, kid, err := k.Open(msg)
		if err != nil {
			if payload != nil {
				t.Fatalf("payload with error %v", err)
			}
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) &&
				!errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		var env Envelope
		if err := json.Unmarshal(msg, &env); err != nil {
			t.Fatalf("accepted, but not JSON: %v", err)
		}
		if env.Kid != kid {
			t.Fatalf("kid %q, envelope says %q", kid, env.Kid)
		}
		sig, err := base64.StdEncoding.DecodeString(env.Sig)
		if err != nil {
			t.Fatalf("accepted, sig not base64: %v", err)
		}
		if !ed25519.Verify(k[kid], payload, sig) {
			t.Fatalf("accepted a payload whose signature does not verify")
		}
		dec, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil || string(dec) != string(payload) {
			t.Fatalf("returned payload differs from the envelope's")
		}
	})
}
