package envelope

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
)

// testKey derives a deterministic key from one byte, so seeds and tests agree.
func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

var (
	signerA = Signer{Kid: "central-2026a", Key: testKey(1)}
	signerB = Signer{Kid: "central-2026b", Key: testKey(2)}
	rogue   = Signer{Kid: "central-2026a", Key: testKey(3)} // known kid, wrong key
)

func ring(signers ...Signer) Keyring {
	k := Keyring{}
	for _, s := range signers {
		k[s.Kid] = s.Public()
	}
	return k
}

func mustSeal(t testing.TB, s Signer, payload string) []byte {
	t.Helper()
	b, err := s.SealBytes([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	doc := customs.Head{Type: customs.TypeHead, Site: "PVG-W", Seq: 1024}
	msg, err := signerA.Seal(doc)
	if err != nil {
		t.Fatal(err)
	}
	payload, kid, err := ring(signerA).Open(msg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if kid != signerA.Kid {
		t.Errorf("kid = %q, want %q", kid, signerA.Kid)
	}
	var got customs.Head
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	if got != doc {
		t.Errorf("payload = %+v, want %+v", got, doc)
	}
}

func TestKidRotation(t *testing.T) {
	k := ring(signerA, signerB)
	for _, s := range []Signer{signerA, signerB} {
		payload, kid, err := k.Open(mustSeal(t, s, `{"type":"head"}`))
		if err != nil || kid != s.Kid || string(payload) != `{"type":"head"}` {
			t.Errorf("kid %s: got %q %q %v", s.Kid, payload, kid, err)
		}
	}
	// B's message presented under A's kid does not verify.
	var env Envelope
	if err := json.Unmarshal(mustSeal(t, signerB, `{}`), &env); err != nil {
		t.Fatal(err)
	}
	env.Kid = signerA.Kid
	msg, _ := json.Marshal(env)
	if _, _, err := k.Open(msg); !errors.Is(err, ErrBadSignature) {
		t.Errorf("kid swapped: err = %v, want ErrBadSignature", err)
	}
}

func envJSON(kid, payload, sig string) []byte {
	b, _ := json.Marshal(Envelope{Kid: kid, Payload: payload, Sig: sig})
	return b
}

func TestOpenRejects(t *testing.T) {
	good := mustSeal(t, signerA, `{"type":"orders","site":"PVG-W","orders":[]}`)
	var env Envelope
	if err := json.Unmarshal(good, &env); err != nil {
		t.Fatal(err)
	}
	other := mustSeal(t, signerA, `{"type":"orders","site":"OTHER","orders":[]}`)
	var otherEnv Envelope
	_ = json.Unmarshal(other, &otherEnv)

	tampered := []byte(`{"type":"orders","site":"PVG-X","orders":[]}`)
	b64 := base64.StdEncoding.EncodeToString
	pad := strings.Repeat(" ", customs.MaxEnvelopeBytes+1-len(good))

	tests := []struct {
		name   string
		msg    []byte
		want   error
		reason string
	}{
		{"too large", append(append([]byte{}, good...), pad...), ErrTooLarge, "too_large"},
		{"too large before parse", bytes.Repeat([]byte("x"), customs.MaxEnvelopeBytes+1), ErrTooLarge, "too_large"},
		{"empty", nil, ErrMalformed, "malformed"},
		{"not json", []byte("hello"), ErrMalformed, "malformed"},
		{"array", []byte(`["a"]`), ErrMalformed, "malformed"},
		{"truncated", good[:len(good)-1], ErrMalformed, "malformed"},
		{"trailing data", append(append([]byte{}, good...), []byte(` {}`)...), ErrMalformed, "malformed"},
		{"duplicate kid", []byte(`{"kid":"x","kid":"` + env.Kid + `","payload":"` + env.Payload + `","sig":"` + env.Sig + `"}`), ErrMalformed, "malformed"},
		{"duplicate payload", []byte(`{"kid":"` + env.Kid + `","payload":"` + env.Payload + `","payload":"` + env.Payload + `","sig":"` + env.Sig + `"}`), ErrMalformed, "malformed"},
		{"extra member", []byte(`{"kid":"` + env.Kid + `","payload":"` + env.Payload + `","sig":"` + env.Sig + `","x":"y"}`), ErrMalformed, "malformed"},
		{"nested member", []byte(`{"kid":"` + env.Kid + `","payload":{"a":[[[[1]]]]},"sig":"` + env.Sig + `"}`), ErrMalformed, "malformed"},
		{"number kid", []byte(`{"kid":1,"payload":"` + env.Payload + `","sig":"` + env.Sig + `"}`), ErrMalformed, "malformed"},
		{"missing sig", []byte(`{"kid":"` + env.Kid + `","payload":"` + env.Payload + `"}`), ErrMalformed, "malformed"},
		{"empty kid", envJSON("", env.Payload, env.Sig), ErrMalformed, "malformed"},
		{"unknown kid", envJSON("central-1999", env.Payload, env.Sig), ErrUnknownKey, "unknown_kid"},
		{"unknown kid wins over bad base64", envJSON("central-1999", "!!", "!!"), ErrUnknownKey, "unknown_kid"},
		{"payload not base64", envJSON(env.Kid, "!!!!", env.Sig), ErrMalformed, "malformed"},
		{"payload url base64", envJSON(env.Kid, strings.NewReplacer("+", "-", "/", "_").Replace(b64([]byte("\xfb\xff\xfe"))), env.Sig), ErrMalformed, "malformed"},
		{"payload unpadded", envJSON(env.Kid, strings.TrimRight(b64([]byte("ab")), "="), env.Sig), ErrMalformed, "malformed"},
		{"payload with newline", envJSON(env.Kid, env.Payload[:4]+"\n"+env.Payload[4:], env.Sig), ErrMalformed, "malformed"},
		{"sig not base64", envJSON(env.Kid, env.Payload, "%%%%"), ErrMalformed, "malformed"},
		{"sig short", envJSON(env.Kid, env.Payload, b64(make([]byte, 63))), ErrMalformed, "malformed"},
		{"tampered payload", envJSON(env.Kid, b64(tampered), env.Sig), ErrBadSignature, "bad_signature"},
		{"payload swapped", envJSON(env.Kid, otherEnv.Payload, env.Sig), ErrBadSignature, "bad_signature"},
		{"zero sig", envJSON(env.Kid, env.Payload, b64(make([]byte, 64))), ErrBadSignature, "bad_signature"},
		{"signed by another key", mustSeal(t, rogue, `{"type":"orders","site":"PVG-W","orders":[]}`), ErrBadSignature, "bad_signature"},
	}
	k := ring(signerA, signerB)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, _, err := k.Open(tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if payload != nil {
				t.Errorf("payload returned with an error: %q", payload)
			}
			if got := Reason(err); got != tt.reason {
				t.Errorf("Reason = %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestOpenAcceptsWhitespaceAndOrder(t *testing.T) {
	var env Envelope
	_ = json.Unmarshal(mustSeal(t, signerA, `{"a":1}`), &env)
	msg := []byte("\n { \"sig\" : \"" + env.Sig + "\", \"payload\":\"" + env.Payload + "\",\"kid\":\"" + env.Kid + "\" }\r\n")
	payload, _, err := ring(signerA).Open(msg)
	if err != nil || string(payload) != `{"a":1}` {
		t.Fatalf("got %q, %v", payload, err)
	}
}

func TestSealTooLarge(t *testing.T) {
	_, err := signerA.SealBytes(bytes.Repeat([]byte("a"), customs.MaxEnvelopeBytes))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err := (Signer{Kid: "x"}).SealBytes([]byte("{}")); err == nil {
		t.Fatal("signer without key sealed")
	}
}

func TestParseKeyring(t *testing.T) {
	k, err := ParseKeyring(map[string]string{
		"a": EncodePublicKey(signerA.Public()),
		"b": " " + EncodePublicKey(signerB.Public()) + "\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !k["a"].Equal(signerA.Public()) || !k["b"].Equal(signerB.Public()) {
		t.Fatal("keys differ")
	}
	_, err = ParseKeyring(map[string]string{
		"good":  EncodePublicKey(signerA.Public()),
		"short": base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"junk":  "not base64!",
	})
	if err == nil {
		t.Fatal("bad keyring accepted")
	}
	for _, kid := range []string{`"short"`, `"junk"`} {
		if !strings.Contains(err.Error(), kid) {
			t.Errorf("error %q does not name %s", err, kid)
		}
	}
	if strings.Contains(err.Error(), `"good"`) {
		t.Errorf("error %q names a good key", err)
	}
}

func TestReason(t *testing.T) {
	if Reason(nil) != "" || Reason(errors.New("x")) != "other" {
		t.Fatal("Reason of nil or foreign error")
	}
}

func BenchmarkOpen(b *testing.B) {
	payload := `{"type":"orders","site":"PVG-W","orders":[` + strings.Repeat(`{"seq":1,"action":"release","subject":{"kind":"parcel","id":"RR123456785CN"}},`, 999) + `{"seq":1,"action":"release","subject":{"kind":"parcel","id":"RR123456785CN"}}]}`
	msg := mustSeal(b, signerA, payload)
	k := ring(signerA)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, _, err := k.Open(msg); err != nil {
			b.Fatal(err)
		}
	}
}
