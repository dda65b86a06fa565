package faults

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
)

// TestGatewayKill kills the gateway with SIGKILL while it ingests orders
// (central issuing all along) and while it drains a backlog of events
// through a slow link, and restarts it each time. After each restart the
// watermark it reported before the kill must still be there (orders acked
// are never lost); at the end every journalled event reached central once,
// and no scan was recorded twice under two ids.
func TestGatewayKill(t *testing.T) {
	cycles := size(5, 100)
	s := newSite(t, siteOpts{proxy: true})
	s.waitFor("online", func(st gwStatus) bool { return st.Link.Online })
	// Most scanned parcels are released, so that PASS decisions are
	// killed mid-way too; every fifth is unknown.
	var rel []customs.Order
	for i := 1; i <= cycles*(2+size(15, 40)+1); i++ {
		if i%5 != 0 {
			rel = append(rel, release(parcel(900000+i)))
		}
	}
	s.issue(rel...)
	stop := s.traffic(500)
	rng := rand.New(rand.NewPCG(s.seed, 17))
	var missing uint64 // orders reported applied before a kill, absent after
	n := 0
	code := func() string { n++; return parcel(900000 + n).ID }

	// killAround kills the gateway a moment after a scan was written, so
	// that some kills land in the middle of deciding and journalling it,
	// and restarts it.
	killAround := func(wait time.Duration) {
		t.Helper()
		var before uint64
		if st, ok := s.status(); ok {
			before = st.Link.Applied
		}
		c := code()
		s.scanner.Write(t, c+"\r\n")
		time.Sleep(wait)
		s.gw.Kill()
		frame := strings.TrimSpace(s.gate.ReadFrame(200*time.Millisecond, "PASS\r\n", "STOP\r\n"))
		if err := s.scanner.FlushInput(); err != nil {
			t.Fatal(err)
		}
		s.smu.Lock()
		s.scans = append(s.scans, scanRec{code: c, frame: frame})
		s.smu.Unlock()
		s.startGateway()
		st, ok := s.status()
		if !ok {
			t.Fatal("no status after restart")
		}
		if st.Link.Applied < before {
			missing += before - st.Link.Applied
			t.Errorf("applied_seq %d after restart, %d reported before the kill", st.Link.Applied, before)
		}
	}

	for i := 0; i < cycles; i++ {
		// During ingest: central keeps issuing.
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
		s.scan(code())
		killAround(time.Duration(rng.IntN(15)) * time.Millisecond)
	}
	ingestKills := cycles

	for i := 0; i < cycles; i++ {
		// During drain: a backlog of events made offline, then delivered
		// through a slow link, killed part way.
		s.proxy.Cut()
		s.waitFor("offline", func(st gwStatus) bool { return !st.Link.Online && !st.Link.PubOnline })
		for range size(15, 40) {
			s.scan(code())
		}
		s.proxy.Toxic("bandwidth", "upstream", `{"rate":4}`) // KB/s
		s.proxy.Restore()
		killAround(time.Duration(200+rng.IntN(2500)) * time.Millisecond)
		s.proxy.RemoveToxics()
	}
	issued := stop()
	took, _ := s.converge()
	r := s.finalCheck()
	if missing != 0 {
		t.Errorf("%d orders acked before a kill and missing after the restart", missing)
	}
	t.Logf("FIGURE gateway-kill: %d kill -9 during ingest, %d during outbox drain; %d orders issued meanwhile; orders acked but missing after restart %d; converged %v after the last; %s",
		ingestKills, cycles, issued, missing, took.Round(time.Millisecond), r)
}
