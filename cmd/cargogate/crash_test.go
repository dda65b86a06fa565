package main

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"

	"github.com/cargogate/cargogate/internal/testenv"
)

// TestCrashDuringIngest kills the gateway with SIGKILL at random moments
// while central pushes 20,000 orders through a broker with its default
// queue limit (which drops), restarting it each time. Afterwards every order
// is applied and every scan whose gate frame was seen reached central.
func TestCrashDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	const total, chunk, kills = 20000, 500, 6
	s := newSite(t)
	rng := rand.New(rand.NewPCG(testenv.Seed(t), 7))

	var wg sync.WaitGroup
	wg.Add(1)
	issuing := make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(issuing)
		for i := 0; i < total; i += chunk {
			var orders []customs.Order
			for j := i; j < i+chunk; j++ {
				orders = append(orders, customs.Order{Action: customs.Release, Subject: sub(customs.Parcel, s10(100000+j))})
			}
			s.issue(orders...)
			time.Sleep(50 * time.Millisecond)
		}
	}()

	codes := map[string]string{} // code → frame seen
	duringIngest := 0
	for k := 0; ; k++ {
		select {
		case <-issuing:
			if k >= kills {
				goto done
			}
		default:
			duringIngest++
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		// A scan while the gateway runs: its frame means its event is durable.
		code := s10(900000 + k)
		codes[code] = s.scan(code)
		s.gw.Kill()
		t.Logf("kill %d: gateway killed", k+1)
		s.startGateway()
	}
done:
	wg.Wait()
	if duringIngest < kills {
		t.Logf("only %d kills fell while central was issuing", duringIngest)
	}
	head := s.centralHead()
	if head != total {
		t.Fatalf("central head %d, want %d", head, total)
	}
	st := s.waitApplied(head, 120*time.Second)
	t.Logf("after %d kills (%d while central was issuing): applied_seq %d = central head %d", len(codes), duringIngest, st.Link.Applied, head)

	deadline := time.Now().Add(30 * time.Second)
	for {
		seen := map[string]int{}
		for _, e := range scanEvents(s.events()) {
			seen[e.Code]++
		}
		missing := 0
		for c := range codes {
			if seen[c] == 0 {
				missing++
			}
			if seen[c] > 1 {
				t.Fatalf("scan %s reached central %d times", c, seen[c])
			}
		}
		if missing == 0 {
			t.Logf("all %d scans whose gate frame was seen reached central", len(codes))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d scans never reached central", missing, len(codes))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st := s.status(); st.Link.Conflicts != 0 {
		t.Errorf("conflicts: %d", st.Link.Conflicts)
	}
}
