package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/store"
)

// The bench's subjects: parcel i is "LP" and 14 digits, so ids in index
// order are keys in sorted order (the fill appends to the B-tree) and a
// random index is a random place in the key space (ingest). Parcels below
// linkedParcels(n) sit 100 to a bag, and bags 50 to a ULD: 5,000 parcels a
// ULD, which gives the decision its ancestors.
func parcel(i int) customs.Subject {
	return customs.Subject{Kind: customs.Parcel, ID: fmt.Sprintf("LP%014d", i)}
}
func bag(i int) customs.Subject {
	return customs.Subject{Kind: customs.Bag, ID: fmt.Sprintf("BG%08d", i)}
}
func uld(i int) customs.Subject {
	return customs.Subject{Kind: customs.ULD, ID: fmt.Sprintf("AKE%05dMU", i)}
}

const (
	perBag = 100
	perULD = 50 // bags
)

// linkedParcels is how many of n parcels are in bags and ULDs: a tenth,
// rounded down to whole ULDs (at least one when n allows).
func linkedParcels(n int) int {
	per := perBag * perULD
	l := n / 10 / per * per
	if l == 0 && n >= per {
		l = per
	}
	return l
}

var (
	farFuture = time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	issuedAt  = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
)

// release is a release as central sends it, and its JSON.
func release(seq uint64, s customs.Subject) (customs.Order, []byte) {
	o := customs.Order{Seq: seq, Action: customs.Release, Subject: s, IssuedAt: issuedAt, ExpiresAt: farFuture,
		Office: "2244", Ref: "22442026E" + strconv.FormatUint(100000000+seq%900000000, 10)}
	b := make([]byte, 0, 256)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"action":"release","subject":{"kind":"`...)
	b = append(b, s.Kind...)
	b = append(b, `","id":"`...)
	b = append(b, s.ID...)
	b = append(b, `"},"issued_at":"2026-03-01T08:00:00Z","expires_at":"2036-01-01T00:00:00Z","office":"2244","ref":"`...)
	b = append(b, o.Ref...)
	b = append(b, `"}`...)
	return o, b
}

// cachedStore returns a store file holding n subjects' parcels (and the
// bags and ULDs of linkedParcels), filling it once into cacheDir. The fill
// skips fsync (NoSync) and applies 100,000 orders a commit in key order; the
// file is fsynced once at the end, then marked done.
func cachedStore(cacheDir string, n int, progress func(string)) (path string, filled time.Duration, err error) {
	if err := os.MkdirAll(cacheDir, 0o750); err != nil {
		return "", 0, err
	}
	path = filepath.Join(cacheDir, fmt.Sprintf("orders-%d-v1.db", n))
	if _, err := os.Stat(path + ".done"); err == nil {
		return path, 0, nil
	}
	os.Remove(path)
	start := time.Now()
	s, err := store.Open(path, store.Options{NoSync: true, InitialMmapSize: 1 << 30})
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}()
	const chunk = 100000
	var b store.Batch
	seq := uint64(1)
	flush := func() error {
		if len(b.Orders) == 0 {
			return nil
		}
		if _, err := s.Apply(b); err != nil {
			return err
		}
		b.Orders = b.Orders[:0]
		if b.Raw != nil {
			b.Raw = b.Raw[:0]
		}
		return nil
	}
	for i := 0; i < n; i++ {
		o, raw := release(seq, parcel(i))
		seq++
		b.Orders, b.Raw = append(b.Orders, o), append(b.Raw, raw)
		if len(b.Orders) == chunk {
			if err := flush(); err != nil {
				return "", 0, err
			}
			progress(fmt.Sprintf("fill: %d/%d parcels, %s", i+1, n, time.Since(start).Round(time.Second)))
		}
	}
	if err := flush(); err != nil {
		return "", 0, err
	}
	b.Raw = nil // links: Apply marshals them
	l := linkedParcels(n)
	for g := 0; g*perBag < l; g++ {
		kids := make([]customs.Subject, 0, perBag)
		for i := g * perBag; i < (g+1)*perBag; i++ {
			kids = append(kids, parcel(i))
		}
		b.Orders = append(b.Orders, customs.Order{Seq: seq, Action: customs.Link, Subject: bag(g), Children: kids, IssuedAt: issuedAt})
		seq++
		if len(b.Orders) == 1000 {
			if err := flush(); err != nil {
				return "", 0, err
			}
			progress(fmt.Sprintf("fill: links, bag %d/%d", g+1, l/perBag))
		}
	}
	for u := 0; u*perULD*perBag < l; u++ {
		kids := make([]customs.Subject, 0, perULD)
		for g := u * perULD; g < (u+1)*perULD; g++ {
			kids = append(kids, bag(g))
		}
		b.Orders = append(b.Orders, customs.Order{Seq: seq, Action: customs.Link, Subject: uld(u), Children: kids, IssuedAt: issuedAt})
		seq++
	}
	if err := flush(); err != nil {
		return "", 0, err
	}
	if err := s.Close(); err != nil {
		return "", 0, err
	}
	if err := syncFile(path); err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(path+".done", []byte(time.Since(start).String()+"\n"), 0o640); err != nil {
		return "", 0, err
	}
	return path, time.Since(start), nil
}

// fillSeqs is how many orders the fill applied for n parcels: the watermark
// of a fresh copy.
func fillSeqs(n int) uint64 {
	l := linkedParcels(n)
	return uint64(n + l/perBag + l/perBag/perULD)
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// copyFile copies src to dst (copy_file_range where the kernel has it).
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
