// Package envelope seals and opens the signed envelope of the customs
// protocol (PROTOCOL.md §2): a JSON object {"kid","payload","sig"} whose
// payload is the base64 of a JSON document and whose sig is the Ed25519
// signature over the decoded payload bytes. Both central and the gateways use
// it; it knows nothing of the documents inside.
package envelope

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cargogate/cargogate/gateway/customs"
)

// Envelope is the wire form of every message (§2).
type Envelope struct {
	Kid     string `json:"kid"`
	Payload string `json:"payload"`
	Sig     string `json:"sig"`
}

// Signer signs outgoing documents with one private key named Kid.
type Signer struct {
	Kid string
	Key ed25519.PrivateKey
}

// Seal marshals doc to JSON and seals it.
func (s Signer) Seal(doc any) ([]byte, error) {
	payload, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("seal: marshal: %w", err)
	}
	return s.SealBytes(payload)
}

// SealBytes signs payload as it is and returns the envelope bytes. It fails if
// the signer is incomplete or the envelope would exceed
// customs.MaxEnvelopeBytes, so a sender never emits what every receiver must
// reject.
func (s Signer) SealBytes(payload []byte) ([]byte, error) {
	if s.Kid == "" {
		return nil, errors.New("seal: signer has no kid")
	}
	if len(s.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("seal: signer %q: private key must be %d bytes", s.Kid, ed25519.PrivateKeySize)
	}
	env := Envelope{
		Kid:     s.Kid,
		Payload: base64.StdEncoding.EncodeToString(payload),
		Sig:     base64.StdEncoding.EncodeToString(ed25519.Sign(s.Key, payload)),
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if len(b) > customs.MaxEnvelopeBytes {
		return nil, fmt.Errorf("seal: %d bytes: %w", len(b), ErrTooLarge)
	}
	return b, nil
}

// Public returns the public key of the signer.
func (s Signer) Public() ed25519.PublicKey {
	return s.Key.Public().(ed25519.PublicKey)
}

// Keyring holds the trusted public keys by kid. Several keys may be trusted at
// once (rotation). A Keyring is read-only once built; callers that change it
// while others Open must guard it themselves.
type Keyring map[string]ed25519.PublicKey

// ParseKeyring builds a keyring from the configuration format: kid → standard
// base64 of the raw 32-byte Ed25519 public key. Errors name the kid.
func ParseKeyring(m map[string]string) (Keyring, error) {
	k := make(Keyring, len(m))
	var errs []error
	for kid, s := range m {
		pub, err := ParsePublicKey(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", kid, err))
			continue
		}
		if kid == "" {
			errs = append(errs, errors.New("key \"\": empty kid"))
			continue
		}
		k[kid] = pub
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

// ParsePublicKey decodes the standard base64 of a raw 32-byte Ed25519 public
// key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("public key: not standard base64: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key: %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// EncodePublicKey is the configuration form of a public key (standard base64).
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// Open verifies msg and returns its payload bytes and kid. The checks run in
// this order, and the first that fails decides the error:
//
//  1. len(msg) ≤ customs.MaxEnvelopeBytes (ErrTooLarge);
//  2. msg is exactly one JSON object with the string members kid, payload and
//     sig, each once, nothing else, and nothing after it (ErrMalformed);
//  3. kid is in the keyring (ErrUnknownKey);
//  4. payload and sig are padded standard base64, sig 64 bytes (ErrMalformed);
//  5. the Ed25519 signature verifies over the decoded payload (ErrBadSignature).
//
// The payload is not parsed: the caller parses it only after Open succeeded.
func (k Keyring) Open(msg []byte) (payload []byte, kid string, err error) {
	if len(msg) > customs.MaxEnvelopeBytes {
		return nil, "", fmt.Errorf("%d bytes: %w", len(msg), ErrTooLarge)
	}
	env, err := parseEnvelope(msg)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	pub, ok := k[env.Kid]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, env.Kid, fmt.Errorf("kid %q: %w", env.Kid, ErrUnknownKey)
	}
	payload, err = decodeBase64(env.Payload)
	if err != nil {
		return nil, env.Kid, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	sig, err := decodeBase64(env.Sig)
	if err != nil {
		return nil, env.Kid, fmt.Errorf("%w: sig: %v", ErrMalformed, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, env.Kid, fmt.Errorf("%w: sig: %d bytes, want %d", ErrMalformed, len(sig), ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, payload, sig) {
		return nil, env.Kid, fmt.Errorf("kid %q: %w", env.Kid, ErrBadSignature)
	}
	return payload, env.Kid, nil
}

// parseEnvelope reads the envelope token by token so that it can refuse what
// json.Unmarshal would quietly accept: duplicate members (two parsers could
// pick different ones), members of another type, unknown members (an
// envelope has exactly three; new fields mean a new protocol version) and
// trailing data. Every value is a string, so nesting is bounded by
// construction.
func parseEnvelope(msg []byte) (Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(msg))
	tok, err := dec.Token()
	if err != nil {
		return env, fmt.Errorf("json: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return env, errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return env, fmt.Errorf("json: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return env, errors.New("json: member name expected")
		}
		if seen[name] {
			return env, fmt.Errorf("member %q: duplicate", name)
		}
		seen[name] = true
		tok, err = dec.Token()
		if err != nil {
			return env, fmt.Errorf("json: %w", err)
		}
		val, ok := tok.(string)
		if !ok {
			return env, fmt.Errorf("member %q: not a string", name)
		}
		switch name {
		case "kid":
			env.Kid = val
		case "payload":
			env.Payload = val
		case "sig":
			env.Sig = val
		default:
			return env, fmt.Errorf("member %q: unknown", name)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return env, fmt.Errorf("json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return env, errors.New("data after the JSON object")
	}
	for _, name := range []string{"kid", "payload", "sig"} {
		if !seen[name] {
			return env, fmt.Errorf("member %q: missing", name)
		}
	}
	if env.Kid == "" {
		return env, errors.New("member \"kid\": empty")
	}
	return env, nil
}

// decodeBase64 decodes padded standard base64 strictly. The standard decoder
// skips CR and LF anywhere; they are refused here so that one payload has one
// spelling.
func decodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64")
	}
	return base64.StdEncoding.Strict().DecodeString(s)
}
