package robustness

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// Subject ids in the forms the classifier reads (§7).

const (
	lpPattern      = `LP[0-9]{14}`
	transitPattern = `TR[0-9]{8}`
)

func s10(r *rand.Rand) string {
	letters := func() string { return string([]byte{byte('A' + r.IntN(26)), byte('A' + r.IntN(26))}) }
	d := make([]byte, 8)
	w := []int{8, 6, 4, 2, 3, 5, 9, 7}
	sum := 0
	for i := range d {
		d[i] = byte('0' + r.IntN(10))
		sum += int(d[i]-'0') * w[i]
	}
	c := 11 - sum%11
	if c == 10 {
		c = 0
	} else if c == 11 {
		c = 5
	}
	return letters() + string(d) + string(rune('0'+c)) + letters()
}

func digitsN(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

func lettersN(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('A' + r.IntN(26))
	}
	return string(b)
}

func newSubject(r *rand.Rand, kind customs.Kind) customs.Subject {
	switch kind {
	case customs.Parcel:
		if r.IntN(5) == 0 {
			return customs.Subject{Kind: kind, ID: "LP" + digitsN(r, 14)}
		}
		return customs.Subject{Kind: kind, ID: s10(r)}
	case customs.Bag:
		return customs.Subject{Kind: kind, ID: lettersN(r, 15) + digitsN(r, 14)}
	case customs.ULD:
		return customs.Subject{Kind: kind, ID: lettersN(r, 3) + digitsN(r, 5) + lettersN(r, 2)}
	case customs.AWB:
		serial := digitsN(r, 7)
		n := 0
		for _, c := range serial {
			n = n*10 + int(c-'0')
		}
		return customs.Subject{Kind: kind, ID: digitsN(r, 3) + serial + string(rune('0'+n%7))}
	default:
		return customs.Subject{Kind: customs.Transit, ID: "TR" + digitsN(r, 8)}
	}
}

// level orders the kinds for ordinary links: a container links subjects of
// a lower level, so chains are at most 5 subjects (4 links) deep.
func level(k customs.Kind) int {
	switch k {
	case customs.Transit:
		return 4
	case customs.ULD:
		return 3
	case customs.AWB:
		return 2
	case customs.Bag:
		return 1
	}
	return 0
}

// genConfig sizes histories.
type genConfig struct {
	Subjects int
	Steps    int
	Decide   int     // subjects decided after each step
	Faults   float64 // probability of a fault between two steps
	// Switches to leave parts out (to check the rest alone).
	NoRetention bool
	NoMalformed bool
	NoKill      bool
}

var (
	kid1 = "central-2026a"
	kid2 = "central-2026b"
)

// generate makes a history: central issuing orders over 90 days, a network
// that duplicates, reorders, delays, drops and replays, and faults.
func generate(seed uint64, cfg genConfig) *history {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	h := &history{Seed: seed, Net: map[string]int{}}
	kinds := []customs.Kind{customs.Parcel, customs.Parcel, customs.Parcel, customs.Parcel, customs.Parcel,
		customs.Parcel, customs.Bag, customs.Bag, customs.ULD, customs.AWB, customs.Transit}
	for range cfg.Subjects {
		h.Subjects = append(h.Subjects, newSubject(r, kinds[r.IntN(len(kinds))]))
	}
	// A few subjects central never hears of.
	var strangers []customs.Subject
	for range 3 {
		strangers = append(strangers, newSubject(r, kinds[r.IntN(len(kinds))]))
	}
	var containers []customs.Subject
	for _, s := range h.Subjects {
		if s.Kind.Container() {
			containers = append(containers, s)
		}
	}
	if len(containers) == 0 {
		containers = append(containers, newSubject(r, customs.Bag))
		h.Subjects = append(h.Subjects, containers[0])
	}

	start := time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)
	now := start
	offset := time.Duration(0)
	step := 90 * 24 * time.Hour / time.Duration(cfg.Steps)
	var seq uint64
	ledger := []wOrder{} // every order central issued, by seq
	linkedPairs := map[[2]customs.Subject]bool{}
	var pairOrder [][2]customs.Subject
	holds := map[customs.Subject][]string{}
	var held []customs.Subject // subjects central put a hold on
	var sent []*msg            // every message sent, for duplicates
	var pool []*msg            // delayed messages
	centralKid := kid1
	trusted := []string{kid1}
	lp := true
	unblockAt := -1 // the step at which a blocked outbox drains again
	online := true
	h.Ops = append(h.Ops, op{Kind: opClock, True: now, Wall: now})

	newOrder := func() wOrder {
		s := h.Subjects[r.IntN(len(h.Subjects))]
		o := customs.Order{Subject: s, IssuedAt: now.Add(-time.Duration(r.IntN(600)) * time.Second)}
		switch k := r.IntN(100); {
		case k < 45:
			o.Action = customs.Release
			if r.IntN(10) < 7 {
				o.ExpiresAt = o.IssuedAt.Add(time.Duration(1+r.IntN(40*24)) * time.Hour)
			}
		case k < 49:
			o.Action = customs.Revoke
			if r.IntN(5) < 3 {
				// Mostly on containers: a revoke above a parcel that is
				// also in a released container is where §4 is subtle.
				o.Subject = containers[r.IntN(len(containers))]
			}
		case k < 56:
			o.Action = customs.Hold
			o.HoldID = fmt.Sprintf("H%d", 1+r.IntN(3))
			o.Reason = customs.HoldReasons[r.IntN(len(customs.HoldReasons))]
			holds[s] = append(holds[s], o.HoldID)
			held = append(held, s)
		case k < 64:
			o.Action = customs.Unhold
			if len(held) > 0 && r.IntN(4) > 0 {
				s = held[r.IntN(len(held))]
				o.Subject = s
			}
			if hs := holds[s]; len(hs) > 0 && r.IntN(10) > 0 {
				o.HoldID = hs[r.IntN(len(hs))]
			} else {
				o.HoldID = fmt.Sprintf("H%d", 1+r.IntN(3))
			}
		case k < 65:
			o.Action = customs.Cancel
			if r.IntN(3) > 0 {
				o.Action = customs.Release
			}
		case k < 92:
			c := containers[r.IntN(len(containers))]
			o.Action, o.Subject = customs.Link, c
			wild := r.IntN(100) == 0 // any subject: loops, long chains
			for range 1 + r.IntN(4) {
				k := h.Subjects[r.IntN(len(h.Subjects))]
				if k == c || (!wild && level(k.Kind) >= level(c.Kind)) || slices.Contains(o.Children, k) {
					continue
				}
				o.Children = append(o.Children, k)
			}
			if len(o.Children) == 0 {
				return wOrder{}
			}
		case k < 98:
			// Unlink pairs that are linked (mostly).
			c := containers[r.IntN(len(containers))]
			o.Action, o.Subject = customs.Unlink, c
			for _, p := range pairOrder { // a slice: map order would make the history differ per run
				if p[0] == c && linkedPairs[p] && r.IntN(2) == 0 {
					o.Children = append(o.Children, p[1])
				}
			}
			if len(o.Children) == 0 {
				return wOrder{}
			}
			slices.SortFunc(o.Children, func(a, b customs.Subject) int { return strings.Compare(a.String(), b.String()) })
		default:
			t := h.Subjects[r.IntN(len(h.Subjects))]
			if t.Kind != customs.Transit {
				return wOrder{}
			}
			o.Action, o.Subject, o.Seals = customs.Seal, t, []string{"SH-" + digitsN(r, 6)}
		}
		if r.IntN(4) == 0 {
			o.Office, o.Ref = "2244", "22442026E"+digitsN(r, 9)
		}
		w := wOrder{O: o}
		if !cfg.NoMalformed && r.IntN(100) < 6 {
			bads := []string{"office", "ref", "note", "extra", "action", "subject", "unreadable"}
			if o.Action == customs.Hold {
				bads = append(bads, "reason", "reason")
			}
			if o.Action == customs.Link || o.Action == customs.Unlink {
				bads = append(bads, "child")
			}
			w.Bad = bads[r.IntN(len(bads))]
			h.Net["order_malformed"]++
		}
		return w
	}

	for stepN := 0; stepN < cfg.Steps; stepN++ {
		// Time passes.
		now = now.Add(time.Duration(r.Int64N(int64(2 * step))))
		h.Ops = append(h.Ops, op{Kind: opClock, True: now, Wall: now.Add(offset)})

		// Central issues.
		var issued []wOrder
		for range r.IntN(9) {
			w := newOrder()
			if w.O.Action == "" {
				continue
			}
			seq++
			w.O.Seq = seq
			issued = append(issued, w)
			ledger = append(ledger, w)
			if w.applicable() && (w.O.Action == customs.Link || w.O.Action == customs.Unlink) {
				for _, c := range w.O.Children {
					p := [2]customs.Subject{w.O.Subject, c}
					if _, ok := linkedPairs[p]; !ok {
						pairOrder = append(pairOrder, p)
					}
					linkedPairs[p] = w.O.Action == customs.Link
				}
			}
		}
		if !cfg.NoMalformed && r.IntN(30) == 0 {
			// An order under seq 0, which central never numbers.
			w := newOrder()
			if w.O.Action != "" {
				w.Bad = "seq0"
				h.Net["order_malformed"]++
				issued = append(issued, w)
			}
		}
		if len(issued) > 0 {
			h.Ops = append(h.Ops, op{Kind: opIssue, Orders: slices.Clone(issued)})
		}
		// Split into messages.
		var fresh []*msg
		for i := 0; i < len(issued); {
			n := 1 + r.IntN(4)
			n = min(n, len(issued)-i)
			fresh = append(fresh, &msg{Topic: "orders", Kid: centralKid, Orders: slices.Clone(issued[i : i+n])})
			i += n
		}
		if r.IntN(5) == 0 {
			fresh = append(fresh, &msg{Topic: "head", Kid: centralKid, Head: seq, At: now})
		}
		var deliver []*msg
		for _, m := range fresh {
			switch k := r.IntN(100); {
			case k < 65:
				deliver = append(deliver, m)
			case k < 90:
				pool = append(pool, m)
				h.Net["msg_delayed"]++
			default:
				h.Net["msg_dropped"]++
			}
			sent = append(sent, m)
		}
		// Delayed messages arrive late, out of order.
		var keep []*msg
		for _, m := range pool {
			if r.IntN(3) == 0 {
				deliver = append(deliver, m)
			} else {
				keep = append(keep, m)
			}
		}
		pool = keep
		// Duplicates of old messages.
		for range r.IntN(3) {
			if len(sent) > 0 && r.IntN(3) == 0 {
				deliver = append(deliver, sent[r.IntN(len(sent))])
				h.Net["msg_duplicated"]++
			}
		}
		// Envelope faults: a message rejected whole (§2).
		if r.IntN(12) == 0 && len(issued) > 0 {
			m := &msg{Topic: "orders", Kid: centralKid, Orders: slices.Clone(issued), Corrupt: []string{"sig", "site", "type"}[r.IntN(3)]}
			deliver = append(deliver, m)
			h.Net["msg_rejected_envelope"]++
		}
		// A conflicting order under a seq already sent (only the gateway's
		// first one counts; sent after the original has been delivered).
		if r.IntN(25) == 0 && len(ledger) > 0 {
			orig := ledger[r.IntN(len(ledger))]
			c := wOrder{O: orig.O}
			c.O.Action, c.O.ExpiresAt, c.O.HoldID, c.O.Reason, c.O.Children = customs.Release, time.Time{}, "", "", nil
			if orig.O.Action == customs.Release {
				c.O.Action = customs.Cancel
			}
			h.Ops = append(h.Ops, op{Kind: opDeliver, Msgs: []*msg{{Topic: "orders", Kid: centralKid, Orders: []wOrder{orig}}}})
			deliver = append(deliver, &msg{Topic: "orders", Kid: centralKid, Orders: []wOrder{c}})
			h.Net["order_conflict"]++
		}
		// Resync: central replays a range, in messages of its own size.
		if r.IntN(8) == 0 && len(ledger) > 0 {
			h.Net["replay"]++
			from := r.IntN(len(ledger))
			for i := from; i < len(ledger); {
				n := min(1+r.IntN(50), len(ledger)-i)
				deliver = append(deliver, &msg{Topic: "replay", Kid: centralKid, Orders: slices.Clone(ledger[i : i+n]), RequestID: fmt.Sprintf("R%d", stepN)})
				i += n
			}
		}
		if len(deliver) > 1 {
			h.Net["reordered_batch"]++
		}
		r.Shuffle(len(deliver), func(i, j int) { deliver[i], deliver[j] = deliver[j], deliver[i] })
		if len(deliver) > 0 {
			var ms []*msg
			for _, m := range deliver {
				ms = append(ms, m.clone())
			}
			if !cfg.NoKill && r.Float64() < cfg.Faults/6 {
				h.Ops = append(h.Ops, op{Kind: opKill, Msgs: ms, KillAfter: r.IntN(len(ms) + 1)})
			} else {
				h.Ops = append(h.Ops, op{Kind: opDeliver, Msgs: ms})
			}
		}

		// Faults between steps.
		if stepN == unblockAt {
			h.Ops = append(h.Ops, op{Kind: opOutbox, Block: false})
			unblockAt = -1
		}
		if r.Float64() < cfg.Faults {
			switch k := r.IntN(100); {
			case k < 15 && !cfg.NoRetention:
				h.Ops = append(h.Ops, op{Kind: opRetention, Days: []int{1, 7, 30, 30, 60}[r.IntN(5)]})
			case k < 35:
				// The wall clock jumps forward or back.
				switch r.IntN(4) {
				case 0:
					offset = 0
				case 1:
					offset = time.Duration(r.IntN(40*24)) * time.Hour
				default:
					offset = -time.Duration(r.IntN(40*24)) * time.Hour
				}
				h.Ops = append(h.Ops, op{Kind: opClock, True: now, Wall: now.Add(offset)})
			case k < 48:
				h.Ops = append(h.Ops, op{Kind: opRestart})
			case k < 62:
				// Reload: the LP pattern comes or goes; central's keys rotate.
				lp = r.IntN(3) > 0
				switch r.IntN(3) {
				case 0:
					trusted = []string{kid1}
				case 1:
					trusted = []string{kid1, kid2}
				default:
					trusted = []string{kid2}
				}
				centralKid = trusted[r.IntN(len(trusted))]
				if r.IntN(6) == 0 {
					centralKid = []string{kid1, kid2}[r.IntN(2)] // central ahead of the gateway
				}
				h.Ops = append(h.Ops, op{Kind: opReload, LP: lp, Kids: slices.Clone(trusted)})
			case k < 78:
				// Central stops acknowledging events for a few steps: the
				// outbox (max_events 40) fills up.
				if unblockAt < 0 {
					unblockAt = stepN + 3 + r.IntN(6)
					h.Ops = append(h.Ops, op{Kind: opOutbox, Block: true})
				}
			default:
				online = !online
				h.Ops = append(h.Ops, op{Kind: opOnline, Online: online})
			}
		}

		// Decide a sample: half of it among the subjects in two or more
		// containers and the containers above them, where ancestry and
		// contents meet.
		parents := map[customs.Subject]int{}
		for _, p := range pairOrder {
			if linkedPairs[p] {
				parents[p[1]]++
			}
		}
		var shared []customs.Subject
		for _, p := range pairOrder {
			if linkedPairs[p] && parents[p[1]] > 1 {
				shared = append(shared, p[0], p[1])
			}
		}
		var subs []customs.Subject
		for i := range cfg.Decide {
			if i%2 == 1 && len(shared) > 0 {
				subs = append(subs, shared[r.IntN(len(shared))])
				continue
			}
			subs = append(subs, h.Subjects[r.IntN(len(h.Subjects))])
		}
		if r.IntN(10) == 0 {
			subs = append(subs, strangers[r.IntN(len(strangers))])
		}
		lookup := []string{"answer", "answer", "late", "silent"}[r.IntN(4)]
		h.Ops = append(h.Ops, op{Kind: opDecide, Subjects: subs, Lookup: lookup})
	}
	return h
}
