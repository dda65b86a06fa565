package fleet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cargogate/cargogate/sync/envelope"
)

// countHandler counts the log records.
type countHandler struct{ n atomic.Int64 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countHandler) WithGroup(string) slog.Handler             { return h }

// Thousands of messages on the status topic from made-up gateways (or
// forged, or garbage) are counted, not remembered one by one nor logged one
// by one: the fleet view's memory and its log stay bounded whatever anyone
// with publish rights sends.
func TestFloodOfFakeStatuses(t *testing.T) {
	clk := &fakeTime{now: t0}
	logs := &countHandler{}
	f, err := New(Options{Site: "PVG-W", Gateways: map[string]ed25519.PublicKey{"g01": gws["g01"].Public()}, Time: clk, Log: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	forger := envelope.Signer{Kid: "PVG-W/g01", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{66}, 32))}
	forged := sealed(t, forger, status("g01", "online", 9, 9, t0))
	const n = 20000
	for i := range n {
		clk.now = t0.Add(time.Duration(i) * time.Millisecond) // 20 s of flood
		id := fmt.Sprintf("fake%05d", i)
		f.Handle(topic(id), sealed(t, gws["g02"], status(id, "online", 1, 1, clk.now)), false)
		f.Handle(topic("g01"), forged, false)
		f.Handle(topic("g01"), []byte("garbage"), false)
	}
	v := f.View()
	if len(v.Gateways) != 1 || len(v.Ignored) > 8 {
		t.Fatalf("after the flood: %d rows, %d ignore reasons; want 1 row and the fixed reasons", len(v.Gateways), len(v.Ignored))
	}
	if got := v.Ignored[IgnoredUnknown] + v.Ignored[envelope.ReasonBadSignature] + v.Ignored[envelope.ReasonMalformed]; got != 3*n {
		t.Errorf("ignored %d, want %d", got, 3*n)
	}
	if got := logs.n.Load(); got > 30 {
		t.Errorf("%d log lines for %d ignored messages in 20 s, want a few (one per reason at most every few seconds)", got, 3*n)
	}
}
