package journal_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cargogate/cargogate/gateway/journal"
)

// BenchmarkAppendLatency measures what a scan waits for: one Append after
// another (a station's pace at its busiest), each one's latency recorded,
// p50 and p99 reported. Three settings: the journal alone; while a
// deliverer drains a backlog as the outbox does (Pending, then Delivered
// in commits of the default size); and while a second bbolt file in the
// same directory (so on the same disk) commits 16 MiB transactions of
// random keys one after another, as the order store does while ingesting.
// It uses only the journal's exported calls, so the same file measures any
// version of the journal. Run it with -benchtime 2000x (or more) and -v
// for the load average at start and end.
func BenchmarkAppendLatency(b *testing.B) {
	for _, bg := range []string{"alone", "delivery", "store-commits"} {
		b.Run(bg, func(b *testing.B) {
			b.Logf("load average at start: %s", loadavg())
			dir := b.TempDir()
			j, err := journal.Open(filepath.Join(dir, "events.db"), journal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); j.Run(ctx) }()
			event := []byte(`{"id":"01JE8Z4Q2W9V0M3K7P5R6T8Y1A","type":"decision","at":"2026-12-06T12:00:00.123456789Z","station":"gate-3","subject":"P123456789012","verdict":"PASS","reason":"released"}`)
			stop := make(chan struct{})
			switch bg {
			case "delivery":
				fill(b, j, event, 50000)
				wg.Add(1)
				go func() { defer wg.Done(); deliver(j, stop) }()
			case "store-commits":
				db, err := bolt.Open(filepath.Join(dir, "orders.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				wg.Add(1)
				go func() { defer wg.Done(); storeCommits(db, stop) }()
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if _, err := j.Append(ctx, event); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			close(stop)
			cancel()
			wg.Wait()
			j.Close()
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
			b.Logf("load average at end: %s", loadavg())
		})
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// fill appends n events from 64 goroutines (group commits of many).
func fill(b *testing.B, j *journal.Journal, event []byte, n int) {
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				if _, err := j.Append(context.Background(), event); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// deliver drains the outbox as sync/outbox does, as fast as it can.
func deliver(j *journal.Journal, stop <-chan struct{}) {
	var after uint64
	for {
		select {
		case <-stop:
			return
		default:
		}
		es, err := j.PendingAfter(after, 1000, 600<<10)
		if err != nil || len(es) == 0 {
			select {
			case <-j.Notify():
			case <-stop:
				return
			}
			continue
		}
		if j.Delivered(es) != nil {
			return
		}
		after = es[len(es)-1].Seq
	}
}

// storeCommits commits 16 MiB transactions of random 16-byte keys and
// 4 KiB values until stop is closed.
func storeCommits(db *bolt.DB, stop <-chan struct{}) {
	val := make([]byte, 4096)
	for {
		select {
		case <-stop:
			return
		default:
		}
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("orders"))
			if err != nil {
				return err
			}
			for range 4096 {
				k := make([]byte, 16)
				rand.Read(k)
				if err := bk.Put(k, val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return
		}
	}
}
