package faults

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestLinkFaults puts a fault-injecting proxy (toxiproxy) between the
// gateway and the broker, and cycles through faults while central issues
// orders and the station scans: the link cut, delayed, reset, sliced
// mid-packet, stopped after a few bytes, and stalled.
func TestLinkFaults(t *testing.T) {
	cycles := size(6, 60)
	s := newSite(t, siteOpts{proxy: true})
	s.waitFor("online", func(st gwStatus) bool { return st.Link.Online })
	stop := s.traffic(300)
	rng := rand.New(rand.NewPCG(s.seed, 13))
	kinds := []string{"cut", "delay", "reset", "slice", "limit", "stall"}
	counts := map[string]int{}
	for i := 0; i < cycles; i++ {
		kind := kinds[i%len(kinds)]
		counts[kind]++
		hold := time.Duration(300+rng.IntN(1200)) * time.Millisecond
		switch kind {
		case "cut": // every connection closed, new ones refused
			s.proxy.Cut()
			time.Sleep(hold)
			s.proxy.Restore()
		case "delay":
			s.proxy.Toxic("latency", "downstream", fmt.Sprintf(`{"latency":%d,"jitter":%d}`, 100+rng.IntN(400), rng.IntN(200)))
			s.proxy.Toxic("latency", "upstream", fmt.Sprintf(`{"latency":%d,"jitter":%d}`, 50+rng.IntN(200), rng.IntN(100)))
		case "reset": // TCP RST after a moment
			s.proxy.Toxic("reset_peer", []string{"upstream", "downstream"}[rng.IntN(2)], fmt.Sprintf(`{"timeout":%d}`, rng.IntN(300)))
		case "slice": // packets cut into a few bytes each, delayed between
			s.proxy.Toxic("slicer", "downstream", `{"average_size":7,"size_variation":5,"delay":200}`)
			s.proxy.Toxic("slicer", "upstream", `{"average_size":3,"size_variation":2,"delay":500}`)
		case "limit": // the connection closed after N bytes: mid-packet
			s.proxy.Toxic("limit_data", []string{"upstream", "downstream"}[rng.IntN(2)], fmt.Sprintf(`{"bytes":%d}`, 20+rng.IntN(4000)))
		case "stall": // no data at all, connection open
			s.proxy.Toxic("timeout", []string{"upstream", "downstream"}[rng.IntN(2)], `{"timeout":0}`)
		}
		if kind != "cut" {
			// Scans while the fault is on: decided from the store, with a
			// lookup bounded by lookup_timeout for unknowns.
			s.scanSample(1, s.c().Head(), 2)
			time.Sleep(hold)
			s.proxy.RemoveToxics()
		}
		s.scanSample(1, s.c().Head(), 1)
	}
	issued := stop()
	took, st := s.converge()
	t.Logf("FIGURE link-faults: %d cycles %v, %d orders issued meanwhile; converged %v after the last, %d resyncs",
		cycles, counts, issued, took.Round(time.Millisecond), st.Link.Resyncs)
	t.Logf("link faults: %s", s.finalCheck())
}
