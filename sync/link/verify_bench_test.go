package link

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/envelope"
)

type benchMsg struct{ payload []byte }

func (m *benchMsg) Duplicate() bool   { return false }
func (m *benchMsg) Qos() byte         { return 1 }
func (m *benchMsg) Retained() bool    { return false }
func (m *benchMsg) Topic() string     { return customs.OrdersTopic("PVG-W") }
func (m *benchMsg) MessageID() uint16 { return 1 }
func (m *benchMsg) Payload() []byte   { return m.payload }
func (m *benchMsg) Ack()              {}

// BenchmarkVerify is verify (envelope, signature, decode, normalize) of a
// message of one order and of 1,000, as the ingest's verifiers run it;
// allocs/op is per message.
func BenchmarkVerify(b *testing.B) {
	l, central := newVerifyLink(b)
	for _, n := range []int{1, 1000} {
		orders := make([]customs.Order, n)
		for i := range orders {
			orders[i] = customs.Order{Seq: uint64(i + 1), Action: customs.Release,
				Subject: customs.Subject{Kind: customs.Parcel, ID: fmt.Sprintf("LP%014d", i)}, Office: "2244", Ref: "22442026E000123456"}
		}
		p, err := central.Seal(customs.Orders{Type: customs.TypeOrders, Site: "PVG-W", Orders: orders})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%d-orders", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				it := &item{msg: &benchMsg{p}, done: make(chan struct{})}
				l.verify(it)
				if it.reject != "" || len(it.orders) != n {
					b.Fatalf("%s: %v", it.reject, it.rejectErr)
				}
			}
		})
	}
}

// newVerifyLink is a link over a fresh store and journal (closed at the
// end of the test) that trusts central, for verify alone; no broker.
func newVerifyLink(tb testing.TB) (*Link, envelope.Signer) {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	jr, err := journal.Open(filepath.Join(dir, "events.db"), journal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { jr.Close() })
	central := envelope.Signer{Kid: "c1", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))}
	gw := envelope.Signer{Kid: "g1", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))}
	l, err := New(Options{Site: "PVG-W", Gateway: "g07", Broker: "tcp://127.0.0.1:1",
		Keys: envelope.Keyring{central.Kid: central.Public()}, Signer: gw}, st, jr, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return l, central
}
