package store

import (
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// Benchmark stores are filled once per process (filling 100k subjects takes
// longer than the measured work) into benchDir, removed by TestMain.
var (
	benchMu   sync.Mutex
	benchDir  string
	benchTmpl = map[string]string{} // name → filled store file
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// template returns the path of a store filled by fill, made once.
func template(b *testing.B, name string, fill func(s *Store)) string {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if p, ok := benchTmpl[name]; ok {
		return p
	}
	if benchDir == "" {
		d, err := os.MkdirTemp("", "cargogate-store-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = d
	}
	p := filepath.Join(benchDir, name+".db")
	s, err := Open(p, Options{NoSync: true, InitialMmapSize: 1 << 28})
	if err != nil {
		b.Fatal(err)
	}
	fill(s)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	benchTmpl[name] = p
	return p
}

// copyOf copies a template into a fresh file for a benchmark that writes.
func copyOf(b *testing.B, tmpl string) string {
	b.Helper()
	dst := filepath.Join(b.TempDir(), "orders.db")
	in, err := os.Open(tmpl)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return dst
}

func benchParcel(i int) customs.Subject { return P(fmt.Sprintf("BP%09d", i)) }

// fillParcels applies n released parcels, seqs 1..n, in batches of 10,000,
// and links them 100 to a bag when bags is true. It returns the next seq.
func fillParcels(b testing.TB, s *Store, n int, bags bool) uint64 {
	seq := uint64(1)
	var batch Batch
	flush := func() {
		if len(batch.Orders) > 0 {
			mustApply(b, s, batch)
			batch.Orders = batch.Orders[:0]
		}
	}
	for i := 0; i < n; i++ {
		batch.Orders = append(batch.Orders, rel(seq, benchParcel(i)))
		seq++
		if len(batch.Orders) == 10000 {
			flush()
		}
	}
	flush()
	if bags {
		for bag := 0; bag*100 < n; bag++ {
			var kids []customs.Subject
			for i := bag * 100; i < min(n, bag*100+100); i++ {
				kids = append(kids, benchParcel(i))
			}
			batch.Orders = append(batch.Orders, link(seq, B(fmt.Sprintf("BB%06d", bag)), kids...))
			seq++
			if len(batch.Orders) == 100 {
				flush()
			}
		}
		flush()
	}
	return seq
}

func BenchmarkDecide(b *testing.B) {
	const parcels, bags = 100000, 1000
	p := template(b, "decide", func(s *Store) { fillParcels(b, s, parcels, true) })
	s, err := Open(p, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Lookups: 90% parcels (a few unknown), 10% bags of 100.
	r := rand.New(rand.NewSource(1))
	subjects := make([]customs.Subject, 4096)
	for i := range subjects {
		if r.Intn(10) == 0 {
			subjects[i] = B(fmt.Sprintf("BB%06d", r.Intn(bags)))
		} else {
			subjects[i] = benchParcel(r.Intn(parcels + parcels/50))
		}
	}
	if d := s.Decide(benchParcel(0), now); !d.Pass {
		b.Fatalf("parcel 0: %+v", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	passes := 0
	for i := 0; i < b.N; i++ {
		if s.Decide(subjects[i%len(subjects)], now).Pass {
			passes++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/decision")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(passes)/float64(b.N), "pass-ratio")
}

func BenchmarkDecideULD5000(b *testing.B) {
	p := template(b, "uld", func(s *Store) { fillULD(b, s, 1) })
	s, err := Open(p, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	uld := U("AKE00001MU")
	b.ReportAllocs()
	b.ResetTimer()
	items := 0
	for i := 0; i < b.N; i++ {
		d := s.Decide(uld, now)
		if !d.Pass {
			b.Fatalf("ULD: %s %q", d.Verdict(), d.Reason)
		}
		items += d.Items
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/decision")
	b.ReportMetric(float64(items)/float64(b.N), "items/decision")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(items), "ns/item")
}

// BenchmarkApplyRandom commits batches of 1,000 releases of random parcels
// (half of them already in the store) with fsync into a store holding
// CARGOGATE_BENCH_SUBJECTS subjects (default 100,000).
func BenchmarkApplyRandom(b *testing.B) {
	n := 100000
	if v := os.Getenv("CARGOGATE_BENCH_SUBJECTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("CARGOGATE_BENCH_SUBJECTS=%q: want a positive integer", v)
		}
	}
	var next uint64
	p := template(b, "apply"+strconv.Itoa(n), func(s *Store) { next = fillParcels(b, s, n, false) })
	if next == 0 {
		next = uint64(n) + 1
	}
	s, err := Open(copyOf(b, p), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewSource(2))
	const batch = 1000
	orders := make([]customs.Order, batch)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for j := range orders {
			orders[j] = rel(next, benchParcel(r.Intn(2*n)))
			next++
		}
		res, err := s.Apply(Batch{Orders: orders})
		if err != nil {
			b.Fatal(err)
		}
		if res.Applied != batch || res.Watermark != next-1 {
			b.Fatalf("batch %d: %+v", i, res)
		}
	}
	b.StopTimer()
	elapsed := time.Since(start)
	b.ReportMetric(float64(batch*b.N)/elapsed.Seconds(), "orders/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/1e6, "ms/batch")
	b.ReportMetric(float64(n), "subjects")
}
