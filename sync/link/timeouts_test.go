package link_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

// TestSetTimeouts starts a link with gap_grace and resync_timeout of an
// hour and changes them in place (a configuration reload): a gap is then
// filled by a resync after the new gap_grace, and an unanswered resync is
// repeated after the new resync_timeout. With the old values neither would
// happen within the test.
func TestSetTimeouts(t *testing.T) {
	dir := t.TempDir()
	r := &rig{t: t}
	r.broker, _ = testenv.StartMosquitto(t)
	r.central, r.stopC = startCentral(t, r.broker, filepath.Join(dir, "central.db"), 200*time.Millisecond)
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if r.j, err = journal.Open(filepath.Join(dir, "events.db"), journal.Options{KeepDelivered: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.j.Close() })
	go r.j.Run(t.Context())
	r.link, err = link.New(link.Options{Site: "PVG-W", Gateway: "g07", Broker: r.broker,
		Keys: envelope.Keyring{centralKey.Kid: centralKey.Public()}, Signer: gwKey,
		GapGrace: time.Hour, ResyncTimeout: time.Hour, Log: slog.New(slog.DiscardHandler)}, st, r.j, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g, rt := r.link.Timeouts(); g != time.Hour || rt != time.Hour {
		t.Fatalf("timeouts %v %v, want the options'", g, rt)
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

	s := r.until("connected, first resync answered", func(s link.Snapshot) bool { return s.Online && s.Resyncs >= 1 && !s.Resyncing })
	_, last, err := r.central.Record(ctx, parcels(20, 1))
	if err != nil {
		t.Fatal(err)
	}
	r.until("a gap", func(s link.Snapshot) bool { return s.Lag > 0 && s.GapSince != nil })
	before := r.link.Snapshot().Resyncs
	r.link.SetTimeouts(200*time.Millisecond, time.Hour)
	s = r.until("gap filled by resync after the new gap_grace", func(s link.Snapshot) bool { return s.Watermark == last && s.Lag == 0 })
	if s.Resyncs <= before {
		t.Fatalf("gap filled without a resync: %d resyncs", s.Resyncs)
	}

	// Central gone: the resync for a new gap stays unanswered; it is asked
	// again once the new resync_timeout has passed.
	r.stopC()
	r.stopC = nil
	forger := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(r.broker).SetClientID("forger"))
	if tk := forger.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	defer forger.Disconnect(100)
	head, _ := centralKey.Seal(customs.Head{Type: customs.TypeHead, Site: "PVG-W", Seq: last + 10, At: time.Now().UTC()})
	if tk := forger.Publish(customs.HeadTopic("PVG-W"), 1, true, head); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	s = r.until("resync outstanding", func(s link.Snapshot) bool { return s.Resyncing && s.Lag == 10 })
	first := s.Resyncs
	r.link.SetTimeouts(200*time.Millisecond, 300*time.Millisecond)
	if g, rt := r.link.Timeouts(); g != 200*time.Millisecond || rt != 300*time.Millisecond {
		t.Fatalf("timeouts %v %v after SetTimeouts", g, rt)
	}
	r.until("resync repeated after the new resync_timeout", func(s link.Snapshot) bool { return s.Resyncs > first })
	forger.Publish(customs.HeadTopic("PVG-W"), 1, true, []byte{}).WaitTimeout(time.Second) // clear the retained head
}
