package link_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/internal/central"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

var (
	centralKey = envelope.Signer{Kid: "central-test", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))}
	gwKey      = envelope.Signer{Kid: "PVG-W/g07", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
)

type rig struct {
	t       *testing.T
	broker  string
	central *central.Central
	stopC   func()
	link    *link.Link
	j       *journal.Journal
	st      *store.Store

	auditMu sync.Mutex
	audits  []auditRec
}

type auditRec struct {
	kind string
	data any
}

// audited returns the audit records of kind so far.
func (r *rig) audited(kind string) []any {
	r.auditMu.Lock()
	defer r.auditMu.Unlock()
	var out []any
	for _, a := range r.audits {
		if a.kind == kind {
			out = append(out, a.data)
		}
	}
	return out
}

func startCentral(t *testing.T, broker, db string, head time.Duration) (*central.Central, func()) {
	t.Helper()
	c, err := central.New(central.Options{Site: "PVG-W", Broker: broker, Signer: centralKey, DBPath: db,
		GatewayKeys: envelope.Keyring{gwKey.Kid: gwKey.Public()}, HeadInterval: head, ClientID: "central-resync-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	return c, func() { cancel(); <-done; c.Close() }
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{t: t}
	r.broker, _ = testenv.StartMosquitto(t)
	r.central, r.stopC = startCentral(t, r.broker, filepath.Join(dir, "central.db"), 200*time.Millisecond)
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.st = st
	if r.j, err = journal.Open(filepath.Join(dir, "events.db"), journal.Options{KeepDelivered: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.j.Close() })
	go r.j.Run(t.Context())
	r.link, err = link.New(link.Options{Site: "PVG-W", Gateway: "g07", Broker: r.broker,
		Keys: envelope.Keyring{centralKey.Kid: centralKey.Public()}, Signer: gwKey,
		GapGrace: 300 * time.Millisecond, ResyncTimeout: time.Second, Log: slog.New(slog.DiscardHandler),
		Audit: func(kind string, data any) {
			r.auditMu.Lock()
			r.audits = append(r.audits, auditRec{kind, data})
			r.auditMu.Unlock()
		}}, st, r.j, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.link.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("link: %v", err)
		}
		if r.stopC != nil {
			r.stopC()
		}
	})
	return r
}

// until polls the link's snapshot until cond holds (a bound on failure,
// not a timing assertion).
func (r *rig) until(what string, cond func(link.Snapshot) bool) link.Snapshot {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if s := r.link.Snapshot(); cond(s) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("%s: not reached; snapshot %+v", what, r.link.Snapshot())
	return link.Snapshot{}
}

func parcels(n, from int) []customs.Order {
	var out []customs.Order
	for i := range n {
		out = append(out, customs.Order{Action: customs.Release, Subject: customs.Subject{Kind: customs.Parcel, ID: central.ParcelID(from + i)}})
	}
	return out
}

// TestResync checks §5.3 on the gateway side against the reference central
// over a real broker: a resync at connection, one after gap_grace when
// the head shows a gap, one after a rejected message, at most one
// outstanding, and a repeat after resync_timeout when no replay_done comes.
func TestResync(t *testing.T) {
	// Registered first, so it runs last: after the link and central stopped.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	r := newRig(t)
	ctx := context.Background()

	// At connection: resync(1, 0), answered.
	s := r.until("connected, first resync answered", func(s link.Snapshot) bool { return s.Online && s.Resyncs >= 1 && !s.Resyncing })
	if s.Lag != 0 || s.GapSince != nil {
		t.Fatalf("lag %d, gap since %v on an empty ledger", s.Lag, s.GapSince)
	}

	// A gap central never published (Record): its periodic head shows it,
	// and after gap_grace the gateway resyncs and applies everything.
	_, last, err := r.central.Record(ctx, parcels(50, 1))
	if err != nil {
		t.Fatal(err)
	}
	before := s.Resyncs
	r.until("head ahead: a gap", func(s link.Snapshot) bool { return s.Lag > 0 && s.GapSince != nil || s.Watermark == last })
	s = r.until("gap filled by resync", func(s link.Snapshot) bool { return s.Watermark == last && s.Lag == 0 })
	if s.Resyncs <= before {
		t.Fatalf("gap filled without a resync: %d resyncs", s.Resyncs)
	}

	// A rejected message (a forged signature) may have held orders: a
	// resync follows after gap_grace though the head shows nothing.
	before = s.Resyncs
	forger := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(r.broker).SetClientID("forger"))
	if tk := forger.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	defer forger.Disconnect(100)
	rogue := envelope.Signer{Kid: centralKey.Kid, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))}
	msg, _ := rogue.Seal(customs.Orders{Type: customs.TypeOrders, Site: "PVG-W", Orders: parcels(1, 500)})
	if tk := forger.Publish(customs.OrdersTopic("PVG-W"), 1, false, msg); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	s = r.until("resync after a rejection", func(s link.Snapshot) bool { return s.Rejected >= 1 && s.Resyncs > before && !s.Resyncing })

	// Central gone: a gap (a head signed by central, published by hand)
	// gets one resync, outstanding, repeated after resync_timeout.
	r.stopC()
	r.stopC = nil
	head, _ := centralKey.Seal(customs.Head{Type: customs.TypeHead, Site: "PVG-W", Seq: last + 10, At: time.Now().UTC()})
	if tk := forger.Publish(customs.HeadTopic("PVG-W"), 1, true, head); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	s = r.until("resync outstanding", func(s link.Snapshot) bool { return s.Resyncing && s.Lag == 10 })
	first := s.Resyncs
	firstSent := *s.ResyncSent
	s = r.until("resync repeated after resync_timeout", func(s link.Snapshot) bool { return s.Resyncs > first })
	if !s.Resyncing || s.ResyncSent == nil || !s.ResyncSent.After(firstSent) {
		t.Fatalf("after the repeat: %+v", s)
	}
	// At most one outstanding: the repeats come one per resync_timeout,
	// not one per tick (gap_grace is 300 ms, the tick 100 ms).
	time.Sleep(1500 * time.Millisecond)
	if n := r.link.Snapshot().Resyncs - first; n > 3 {
		t.Fatalf("%d resyncs in 1.5 s with resync_timeout 1 s: more than one outstanding", n)
	}
	forger.Publish(customs.HeadTopic("PVG-W"), 1, true, []byte{}).WaitTimeout(time.Second) // clear the retained head
}
