package central

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// GenSpec describes a generated stream of orders. Zero values take the
// documented defaults.
type GenSpec struct {
	// Count is how many orders to issue; 0: until ctx is done.
	Count int
	// Rate is orders per second; 0: as fast as the ledger commits them.
	Rate float64
	// Seed seeds the random choices; the same seed and FirstSerial give the
	// same stream.
	Seed uint64
	// FirstSerial is the first serial used for ids; 0: Head()+1, so that a
	// second run on the same ledger makes new parcels, bags and ULDs.
	FirstSerial int
	// ParcelsPerBag is the number of parcels per bag. Default 20.
	ParcelsPerBag int
	// BagsPerULD is the number of bags per ULD. Default 5.
	BagsPerULD int
	// HoldRate is the share of parcels put on hold. Default 0.05.
	HoldRate float64
	// UnholdRate is the share of holds lifted later. Default 0.5.
	UnholdRate float64
	// CancelRate is the share of parcels whose declaration is cancelled.
	// Default 0.01.
	CancelRate float64
	// ReleaseTTL is how long a release lasts (expires_at − now). Default 72h.
	ReleaseTTL time.Duration
	// Office is the 4-digit customs office on every order. Default "2244".
	Office string
	// Batch is the most orders per Issue call. Default 500.
	Batch int
}

func (s *GenSpec) setDefaults(head uint64) {
	if s.FirstSerial == 0 {
		s.FirstSerial = int(head) + 1
	}
	if s.ParcelsPerBag <= 0 {
		s.ParcelsPerBag = 20
	}
	if s.BagsPerULD <= 0 {
		s.BagsPerULD = 5
	}
	if s.HoldRate == 0 {
		s.HoldRate = 0.05
	}
	if s.UnholdRate == 0 {
		s.UnholdRate = 0.5
	}
	if s.CancelRate == 0 {
		s.CancelRate = 0.01
	}
	if s.ReleaseTTL <= 0 {
		s.ReleaseTTL = 72 * time.Hour
	}
	if s.Office == "" {
		s.Office = "2244"
	}
	if s.Batch <= 0 {
		s.Batch = 500
	}
}

// Generate issues a realistic stream, one ULD at a time: parcels (UPU S10)
// released with an expiry, some held (random reason) and some of those
// unheld, a few cancelled, linked into bags (SSCC), the bags linked into a
// ULD. Orders go through Issue in batches, paced to Rate. It returns how many
// orders it issued, and stops early, without error, when ctx is done.
func (c *Central) Generate(ctx context.Context, spec GenSpec) (int, error) {
	spec.setDefaults(c.Head())
	rng := rand.New(rand.NewPCG(spec.Seed, uint64(spec.FirstSerial)))
	g := &generator{spec: spec, rng: rng, now: c.opts.Now, serial: spec.FirstSerial}
	start := time.Now()
	issued := 0
	var pending []customs.Order
	for spec.Count == 0 || issued < spec.Count {
		if len(pending) == 0 {
			pending = g.unit()
		}
		n := min(len(pending), spec.Batch)
		if spec.Count > 0 {
			n = min(n, spec.Count-issued)
		}
		if spec.Rate > 0 {
			// Wait until the stream is allowed issued+1 orders, then take
			// what the rate allows now (at least one).
			due := start.Add(time.Duration(float64(issued+1) / spec.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return issued, nil
				case <-t.C:
				}
			}
			allowed := int(spec.Rate*time.Since(start).Seconds()) - issued
			n = max(1, min(n, allowed))
		}
		if ctx.Err() != nil {
			return issued, nil
		}
		if _, _, err := c.Issue(ctx, pending[:n]); err != nil {
			if ctx.Err() != nil {
				return issued, nil
			}
			return issued, fmt.Errorf("generate: %w", err)
		}
		issued += n
		pending = pending[n:]
	}
	return issued, nil
}

type generator struct {
	spec   GenSpec
	rng    *rand.Rand
	now    func() time.Time
	serial int
	refs   int
}

func (g *generator) next() int { g.serial++; return g.serial - 1 }

func (g *generator) ref() string {
	g.refs++
	return fmt.Sprintf("%s%dE%09d", g.spec.Office, g.now().Year(), (g.serial*7+g.refs)%1_000_000_000)
}

// unit makes the orders of one ULD.
func (g *generator) unit() []customs.Order {
	var out, later []customs.Order
	uld := customs.Subject{Kind: customs.ULD, ID: ULDID(g.next())}
	expires := g.now().Add(g.spec.ReleaseTTL).UTC().Truncate(time.Second)
	var bags []customs.Subject
	for b := 0; b < g.spec.BagsPerULD; b++ {
		bag := customs.Subject{Kind: customs.Bag, ID: SSCC(g.next())}
		bags = append(bags, bag)
		var parcels []customs.Subject
		for p := 0; p < g.spec.ParcelsPerBag; p++ {
			parcel := customs.Subject{Kind: customs.Parcel, ID: ParcelID(g.next())}
			parcels = append(parcels, parcel)
			out = append(out, customs.Order{Action: customs.Release, Subject: parcel, ExpiresAt: expires, Office: g.spec.Office, Ref: g.ref()})
			if g.rng.Float64() < g.spec.HoldRate {
				holdID := "H" + parcel.ID
				reason := customs.HoldReasons[g.rng.IntN(len(customs.HoldReasons))]
				out = append(out, customs.Order{Action: customs.Hold, Subject: parcel, HoldID: holdID, Reason: reason, Office: g.spec.Office, Note: "generated " + reason})
				if g.rng.Float64() < g.spec.UnholdRate {
					later = append(later, customs.Order{Action: customs.Unhold, Subject: parcel, HoldID: holdID, Office: g.spec.Office})
				}
			}
			if g.rng.Float64() < g.spec.CancelRate {
				later = append(later, customs.Order{Action: customs.Cancel, Subject: parcel, Office: g.spec.Office, Note: "declaration withdrawn"})
			}
		}
		out = append(out, customs.Order{Action: customs.Link, Subject: bag, Children: parcels, Office: g.spec.Office})
	}
	out = append(out, customs.Order{Action: customs.Link, Subject: uld, Children: bags, Office: g.spec.Office})
	return append(out, later...)
}
