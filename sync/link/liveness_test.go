package link_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/internal/liveness"
	"github.com/cargogate/cargogate/internal/testenv"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

// The link's control loop registers its heartbeat "link" while it runs,
// ticks it as it turns (the registry's clock moved on, it is alive again
// after a turn), and removes it when it returns.
func TestLinkLiveness(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	reg := &liveness.Registry{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	dir := t.TempDir()
	broker, _ := testenv.StartMosquitto(t)
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	j, err := journal.Open(filepath.Join(dir, "events.db"), journal.Options{KeepDelivered: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	go j.Run(t.Context())
	lk, err := link.New(link.Options{Site: "PVG-W", Gateway: "g07", Broker: broker,
		Keys: envelope.Keyring{centralKey.Kid: centralKey.Public()}, Signer: gwKey,
		Log: slog.New(slog.DiscardHandler), Liveness: reg}, st, j, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lk.Run(ctx) }()
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) { // a bound on failure, not a timing assertion
				t.Fatal(what)
			}
		}
	}
	until("the link registered no heartbeat", func() bool { return reg.Len() == 1 })
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	until("the link's loop did not tick", func() bool { return len(reg.Stale(time.Minute)) == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := reg.Len(); n != 0 {
		t.Fatalf("%d heartbeats left after the link returned", n)
	}
}
