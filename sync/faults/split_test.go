package faults

import (
	"fmt"
	"testing"
	"time"
)

// TestBrokerSplit: two independent mosquittos, A and B. The gateway reaches
// A through a proxy; central reaches A directly. The proxy cuts the
// gateway off A alone (a partition between the gateway and its broker):
// both gateway connections move to B, while central stays on A, which it
// never lost. The partition heals. Nothing makes anyone move again: the
// gateway sits on B, where nobody answers its resync and nobody reads its
// events, central on A, where its orders reach no gateway. The gateway
// must notice that central is not on its broker (its resyncs unanswered)
// and move on, and its events connection must follow its order
// connection (events_ack comes on the order connection).
func TestBrokerSplit(t *testing.T) {
	s := newSite(t, siteOpts{twoBrokers: true, proxy: true, lateOK: true})
	onURL := func(u string) func(gwStatus) bool {
		return func(st gwStatus) bool {
			return st.Link.Online && st.Link.PubOnline && st.Link.Broker == u && st.Link.PubBroker == u
		}
	}
	s.waitFor("both connections on A (through the proxy)", onURL(s.proxy.URL()))
	s.proxy.Cut()
	s.waitFor("both connections on B", onURL(s.spare.URL()))
	s.proxy.Restore()
	if got := s.c().Broker(); got != s.broker.URL() {
		t.Fatalf("central moved to %q: the scenario needs it on A", got)
	}
	cut := time.Now()
	seq := s.issue(release(parcel(2_000_001)))
	// A bound on the wait, not a figure: two resync timeouts (5 s each in
	// the suite) and a few delays of at most 5 s.
	bound := time.Minute
	var st gwStatus
	for deadline := time.Now().Add(bound); ; time.Sleep(50 * time.Millisecond) {
		var ok bool
		if st, ok = s.status(); ok && st.Link.Applied >= seq {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway on %q (events on %q), central on %q: order %d not applied within %v; applied_seq %d",
				st.Link.Broker, st.Link.PubBroker, s.c().Broker(), seq, bound, st.Link.Applied)
		}
	}
	t.Logf("FIGURE split: order applied %v after the partition healed; gateway on %s", time.Since(cut).Round(time.Millisecond), st.Link.Broker)
	if f := s.scan(parcel(2_000_001).ID); f != "PASS" {
		t.Errorf("a released parcel: %s", f)
	}
	// The scan's event must reach central: the outbox empties only on
	// central's events_ack, which comes on the order connection.
	s.waitFor(fmt.Sprintf("events connection with the order connection, outbox empty"), func(st gwStatus) bool {
		return st.Link.Outbox == 0 && st.Link.PubBroker == st.Link.Broker && st.Link.Broker != ""
	})
	t.Logf("split: %s", s.finalCheck())
}
