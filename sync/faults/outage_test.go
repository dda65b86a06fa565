package faults

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cargogate/cargogate/internal/central"
)

// TestOfflineBacklog: the gateway is away while central issues a backlog
// through a broker that queues at most 1000 messages for it and drops the
// rest without a word. After reconnecting, resync fills every gap.
func TestOfflineBacklog(t *testing.T) {
	n := size(10_000, 100_000)
	s := newSite(t, siteOpts{brokerConf: []string{"max_queued_messages 1000"}, perMessage: 5, replayBatch: 1000})
	s.waitFor("online", func(st gwStatus) bool { return st.Link.Online })
	// A clean stop keeps the persistent session: the broker queues for it.
	s.gw.Stop(10 * time.Second)
	issued, err := s.c().Generate(context.Background(), central.GenSpec{Count: n, Seed: 11})
	if err != nil || issued != n {
		t.Fatalf("generated %d of %d: %v", issued, n, err)
	}
	head := s.c().Head()
	start := time.Now()
	s.startGateway()
	took, st := s.converge()
	took = time.Since(start)
	t.Logf("FIGURE offline-backlog: %d orders issued while the gateway was away (broker queue 1000 messages of 5 orders); converged in %v after restart, %d resyncs, applied_seq %d = head %d",
		n, took.Round(time.Millisecond), st.Link.Resyncs, st.Link.Applied, head)
	s.scanSample(1, head, 20)
	t.Logf("offline backlog: %s", s.finalCheck())
}

// scanSample scans k random subjects of the ledger's orders from..to that
// the gateway has applied (to is clamped to its applied_seq), and checks
// each frame at the gate against the ledger at once: a PASS must be
// released in some state the gateway may have held, a STOP must not be
// released in every such state (central.CheckPass, CheckStop). So a
// gateway that always said STOP, or always PASS, fails here as well as in
// the final check.
func (s *site) scanSample(from, to uint64, k int) {
	s.t.Helper()
	st, ok := s.status()
	if !ok {
		s.t.Fatalf("scan sample: the gateway does not answer")
	}
	applied := st.Link.Applied
	if to = min(to, applied); to < from {
		return
	}
	subs := s.subjectsOf(from, to)
	for i := 0; i < k && len(subs) > 0; i++ {
		sj := subs[s.rng.IntN(len(subs))]
		at := time.Now()
		frame := s.scan(sj.ID)
		var err error
		if frame == "PASS" {
			err = s.c().CheckPass(sj, applied, applied, at)
		} else {
			err = s.c().CheckStop(sj, 0, applied, at)
		}
		if err != nil && !errors.Is(err, central.ErrUnchecked) {
			s.t.Errorf("scan %s: gate told %s, applied_seq %d before: %v", sj, frame, applied, err)
		}
	}
}

// traffic issues orders at a steady pace until stopped, as central does in
// a working day, and returns a stop function reporting how many it issued.
func (s *site) traffic(rate float64) (stop func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			issued, err := s.c().Generate(ctx, central.GenSpec{Rate: rate, Count: 200, Seed: uint64(n.Load()), Batch: 20})
			n.Add(int64(issued))
			if err != nil && ctx.Err() == nil {
				s.t.Errorf("traffic: %v", err)
				return
			}
		}
	}()
	return func() int {
		cancel()
		wg.Wait()
		return int(n.Load())
	}
}

// TestBrokerCrash kills the broker with SIGKILL and restarts it without
// persistence, again and again, while central issues orders and the
// station scans: sessions, queues and the retained head are lost each
// time, and resync at reconnection brings everything back.
func TestBrokerCrash(t *testing.T) {
	cycles := size(3, 30)
	// A killed broker loses events it acknowledged; the gateway sends them
	// again after reconnecting, so they may arrive after newer ones.
	s := newSite(t, siteOpts{lateOK: true})
	s.waitFor("online", func(st gwStatus) bool { return st.Link.Online })
	stop := s.traffic(400)
	rng := rand.New(rand.NewPCG(s.seed, 9))
	for i := 0; i < cycles; i++ {
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		s.scanSample(1, s.c().Head(), 3)
		s.broker.Kill()
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
		s.scanSample(1, s.c().Head(), 2) // offline decisions meanwhile
		s.broker.Restart()
	}
	issued := stop()
	took, st := s.converge()
	t.Logf("FIGURE broker-crash: %d kill -9 and restarts of the broker, %d orders issued during them; converged %v after the last, %d resyncs",
		cycles, issued, took.Round(time.Millisecond), st.Link.Resyncs)
	t.Logf("broker crash: %s", s.finalCheck())
}
