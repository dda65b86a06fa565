package main

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/central"
	"github.com/cargogate/cargogate/sync/envelope"
)

// The demo's simulated world: parcels issued by the reference central,
// scanners and trucks that scan them, the gate watched, a forger.

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

// world is what the demo's central has issued, so stations scan real codes.
type world struct {
	mu     sync.Mutex
	rng    *rand.Rand
	codes  []string // codes worth scanning: parcels, bags, ULDs
	serial int
}

func (w *world) pick() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rng.IntN(100)
	switch {
	case r < 6 || len(w.codes) == 0:
		return central.ParcelID(90000000 + w.rng.IntN(1000000)) // never issued: unknown
	case r < 9:
		return []string{"hello", "RR123456784CN", "]C1" + "\x1d" + "0012345", "AKE1MU"}[w.rng.IntN(4)]
	}
	// Newer codes more often: they are what the floor is handling now.
	n := len(w.codes)
	i := n - 1 - int(float64(n)*w.rng.Float64()*w.rng.Float64())
	return w.codes[max(i, 0)]
}

// issue makes one ULD of bags of parcels at a time, with the mix a floor
// sees: most released, some held for inspection, a few cancelled, an
// occasional revoke or short expiry.
func (w *world) issue(ctx context.Context, cen *central.Central, say func(string, ...any)) error {
	tick := time.NewTicker(4 * time.Second)
	defer tick.Stop()
	for round := 0; ; round++ {
		now := time.Now().UTC()
		var orders []customs.Order
		var codes []string
		w.mu.Lock()
		uld := customs.Subject{Kind: customs.ULD, ID: central.ULDID(w.serial + 1)}
		var bags []customs.Subject
		held, cancelled := 0, 0
		for b := 0; b < 3; b++ {
			bag := customs.Subject{Kind: customs.Bag, ID: central.SSCC(w.serial*10 + b + 1)}
			var parcels []customs.Subject
			for p := 0; p < 6; p++ {
				w.serial++
				par := customs.Subject{Kind: customs.Parcel, ID: central.ParcelID(w.serial)}
				parcels = append(parcels, par)
				codes = append(codes, par.ID)
				exp := now.Add(72 * time.Hour)
				if w.rng.IntN(20) == 0 {
					exp = now.Add(20 * time.Second)
				}
				orders = append(orders, customs.Order{Action: customs.Release, Subject: par, ExpiresAt: exp, Office: "2244",
					Ref: fmt.Sprintf("2244%dE%09d", now.Year(), w.serial)})
				switch r := w.rng.IntN(100); {
				case r < 8:
					held++
					reason := []string{"inspection", "do_not_load", "detention"}[w.rng.IntN(3)]
					orders = append(orders, customs.Order{Action: customs.Hold, Subject: par, HoldID: fmt.Sprintf("H%d", w.serial), Reason: reason})
				case r < 10:
					cancelled++
					orders = append(orders, customs.Order{Action: customs.Cancel, Subject: par})
				case r < 11:
					orders = append(orders, customs.Order{Action: customs.Revoke, Subject: par})
				}
			}
			orders = append(orders, customs.Order{Action: customs.Link, Subject: bag, Children: parcels})
			bags = append(bags, bag)
			codes = append(codes, bag.ID)
		}
		orders = append(orders, customs.Order{Action: customs.Link, Subject: uld, Children: bags})
		codes = append(codes, uld.ID)
		w.mu.Unlock()
		first, last, err := cen.Issue(ctx, orders)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		w.mu.Lock()
		w.codes = append(w.codes, codes...)
		w.mu.Unlock()
		say("central  issued orders %d–%d: ULD %s, 3 bags, 18 parcels (%d held, %d cancelled)", first, last, uld.ID, held, cancelled)
		// An inspection that ends: lift a hold now and then.
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// scanLoop plays a scanner: it dials the station's TCP scanner port and
// types a code every pace.
func (w *world) scanLoop(ctx context.Context, id, addr string, pace time.Duration) error {
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	t := time.NewTicker(pace)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if conn == nil {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				continue
			}
			conn = c
		}
		if _, err := conn.Write([]byte(w.pick() + "\r\n")); err != nil {
			conn.Close()
			conn = nil
		}
	}
}

// truckLoop plays the arrival station: central issues a transit (its seals
// and its bags), the truck arrives, and the station scans the transit, its
// seals and its bags, then the transit again to close it. Every other truck
// has one bag missing and a foreign seal, as happens on a real dock.
func (w *world) truckLoop(ctx context.Context, cen *central.Central, id, addr string, pace time.Duration, say func(string, ...any)) error {
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	send := func(code string) bool {
		for conn == nil {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn = c
				break
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(pace):
			}
		}
		if _, err := conn.Write([]byte(code + "\r\n")); err != nil {
			conn.Close()
			conn = nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pace):
			return true
		}
	}
	for truck := 1; ; truck++ {
		tr := customs.Subject{Kind: customs.Transit, ID: fmt.Sprintf("TR%010d", truck)}
		seals := []string{fmt.Sprintf("SH-%06d", 2*truck-1), fmt.Sprintf("SH-%06d", 2*truck)}
		var bags []customs.Subject
		var orders []customs.Order
		for b := 0; b < 4; b++ {
			bag := customs.Subject{Kind: customs.Bag, ID: central.SSCC(900000 + truck*10 + b)}
			bags = append(bags, bag)
			orders = append(orders, customs.Order{Action: customs.Release, Subject: bag, ExpiresAt: time.Now().Add(72 * time.Hour), Office: "2305"})
		}
		orders = append(orders,
			customs.Order{Action: customs.Seal, Subject: tr, Seals: seals, Office: "2305", Note: "sealed at the inland office (Suzhou)"},
			customs.Order{Action: customs.Link, Subject: tr, Children: bags, Office: "2305"})
		if _, _, err := cen.Issue(ctx, orders); err != nil {
			return nil
		}
		odd := truck%2 == 1
		if odd {
			say("truck    transit %s arriving from Suzhou: seals %v, 4 bags; one bag will be missing and one seal is not the one put on", tr.ID, seals)
		} else {
			say("truck    transit %s arriving from Suzhou: seals %v, 4 bags", tr.ID, seals)
		}
		codes := []string{tr.ID, seals[0]}
		if odd {
			codes = append(codes, "SH-999999")
		} else {
			codes = append(codes, seals[1])
		}
		for i, b := range bags {
			if odd && i == 3 {
				continue
			}
			codes = append(codes, b.ID)
		}
		codes = append(codes, tr.ID)
		for _, c := range codes {
			if !send(c) {
				return nil
			}
		}
		// A pause between trucks, with some ordinary scans.
		for range 6 {
			if !send(w.pick()) {
				return nil
			}
		}
	}
}

// gateWatch plays the gate controller: it reads the frames the gateway
// writes to the pty.
func gateWatch(ctx context.Context, id string, m *os.File, say func(string, ...any)) error {
	buf := make([]byte, 256)
	var pending string
	for ctx.Err() == nil {
		m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _ := m.Read(buf)
		pending += string(buf[:n])
		for {
			i := strings.Index(pending, "\r\n")
			if i < 0 {
				break
			}
			frame := pending[:i]
			pending = pending[i+2:]
			what := "stays CLOSED"
			if frame == "PASS" {
				what = "OPENS"
			}
			say("gate     %s received %q: the gate %s", id, frame, what)
		}
	}
	return nil
}

// forger publishes a forged release now and then, as a hostile device on
// the LAN might: the gateway must reject it and change nothing.
func forger(ctx context.Context, cen *central.Central, site string, say func(string, ...any)) error {
	_, rogue, _ := ed25519.GenerateKey(crand.Reader)
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		o := customs.Order{Seq: cen.Head() + 1, Action: customs.Release, Subject: customs.Subject{Kind: customs.Parcel, ID: central.ParcelID(99000000 + n)}}
		payload, _ := json.Marshal(customs.Orders{Type: customs.TypeOrders, Site: site, Orders: []customs.Order{o}})
		msg, err := envelope.Signer{Kid: "central-demo", Key: rogue}.SealBytes(payload)
		if err != nil {
			return err
		}
		if err := cen.PublishRaw(customs.OrdersTopic(site), msg); err == nil {
			say("forger   published a release of %s signed with a stolen kid but the wrong key", o.Subject.ID)
		}
	}
}
