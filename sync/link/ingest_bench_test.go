package link_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/journal"
	"github.com/cargogate/cargogate/gateway/store"
	"github.com/cargogate/cargogate/sync/envelope"
	"github.com/cargogate/cargogate/sync/link"
)

// BenchmarkIngestOneOrder runs the order pipeline (verify on every core,
// commit with fsync, ack) over b.N messages of one order fed as fast as it
// takes them, without a broker; it reports the process's CPU time a
// message (cpu-µs/msg), the figure the ingest ratio compares with a bare
// verifier's.
func BenchmarkIngestOneOrder(b *testing.B) {
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "orders.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	jr, err := journal.Open(filepath.Join(dir, "events.db"), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer jr.Close()
	lk, err := link.New(link.Options{Site: "PVG-W", Gateway: "g07", Broker: "tcp://127.0.0.1:1",
		Keys: envelope.Keyring{centralKey.Kid: centralKey.Public()}, Signer: gwKey}, st, jr, nil)
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]*ackMsg, b.N)
	for i := range msgs {
		o := customs.Order{Seq: uint64(i + 1), Action: customs.Release, Office: "2244", Ref: "22442026E000123456",
			Subject:  customs.Subject{Kind: customs.Parcel, ID: fmt.Sprintf("LP%014d", (i*7919)%1000003)},
			IssuedAt: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)}
		p, err := centralKey.Seal(customs.Orders{Type: customs.TypeOrders, Site: "PVG-W", Orders: []customs.Order{o}})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = &ackMsg{payload: p, acked: make(chan struct{})}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cpu0 := cpuTime()
	b.ResetTimer()
	go func() { done <- lk.Ingest(ctx) }()
	for _, m := range msgs {
		lk.Feed(m)
	}
	for _, m := range msgs {
		<-m.acked
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	cancel()
	<-done
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

// BenchmarkVerifyOnly is the bare verifier's work a message (envelope and
// signature), in CPU time, for comparison.
func BenchmarkVerifyOnly(b *testing.B) {
	p, err := centralKey.Seal(customs.Orders{Type: customs.TypeOrders, Site: "PVG-W", Orders: []customs.Order{{Seq: 1,
		Action: customs.Release, Subject: customs.Subject{Kind: customs.Parcel, ID: "LP00000000000001"}}}})
	if err != nil {
		b.Fatal(err)
	}
	ring := envelope.Keyring{centralKey.Kid: centralKey.Public()}
	cpu0 := cpuTime()
	for b.Loop() {
		if _, _, err := ring.Open(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
