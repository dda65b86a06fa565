package link

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/persist"
)

// Seqs a replay does not deliver (amendment 2): a seq central sends only
// in a form the gateway cannot read ("seq":"11"), or seqs a signed head
// announces beyond anything central can replay, are asked for again once
// per resync_timeout, never every gap_grace, and raise order_gap; a lost
// order is still asked for after gap_grace.

// gapStore is a store that knows which seqs it holds (every seq ≤ below,
// and those in have) and lists the others (Missing, as store.Store does).
type gapStore struct {
	fakeStore
	mu    sync.Mutex
	below uint64
	have  map[uint64]bool
}

func newGapStore(w uint64) *gapStore {
	return &gapStore{fakeStore: fakeStore{persist.Progress{Watermark: w, MaxSeq: w, Head: w}}, below: w, have: map[uint64]bool{}}
}

func (s *gapStore) add(seqs ...uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range seqs {
		s.have[q] = true
	}
}

func (s *gapStore) Missing(from, to uint64, limit int) ([][2]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][2]uint64
	if from >= to || limit <= 0 {
		return nil, nil
	}
	var keys []uint64
	for k := range s.have {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	next := max(from+1, s.below+1)
	for _, k := range keys {
		if k < next {
			continue
		}
		if k > to {
			break
		}
		if k > next {
			out = append(out, [2]uint64{next, k - 1})
			if len(out) == limit {
				return out, nil
			}
		}
		next = k + 1
	}
	if next <= to {
		out = append(out, [2]uint64{next, to})
	}
	return out, nil
}

// answerResyncs runs the control loop for d of virtual time, answering
// every resync at once with replay_done up_to, and returns the resyncs
// sent in that time.
func answerResyncs(t *testing.T, l *Link, c *fakeConn, d time.Duration, upTo uint64) []customs.Resync {
	t.Helper()
	answered := map[string]bool{}
	for _, r := range c.resyncs(t) {
		answered[r.RequestID] = true
	}
	var out []customs.Resync
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		for _, r := range c.resyncs(t) {
			if !answered[r.RequestID] {
				answered[r.RequestID] = true
				out = append(out, r)
				replayDone(l, r.RequestID, upTo)
				synctest.Wait()
			}
		}
	}
	return out
}

// sentTimes are when the resyncs went out.
func sentTimes(c *fakeConn) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, m := range c.sent {
		if strings.HasSuffix(m.topic, "/"+customs.LeafResync) {
			out = append(out, m.at)
		}
	}
	return out
}

// checkPace fails if two of the last n resyncs went out less than
// resync_timeout apart.
func checkPace(t *testing.T, c *fakeConn, n int, timeout time.Duration) {
	t.Helper()
	at := sentTimes(c)
	at = at[len(at)-n:]
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < timeout {
			t.Errorf("resyncs %v apart, resync_timeout is %v", gap, timeout)
		}
	}
}

// TestControlUnreadableSeqResyncsEveryResyncTimeout: an order whose seq
// cannot be read ("seq":"11") leaves seq 11 missing; central's replay
// carries the same bytes, so the gap never fills. Once a replay_done has
// covered it, it is alarmed (order_gap, with the range) and asked for at
// most once per resync_timeout; an order that fills it clears the alarm.
func TestControlUnreadableSeqResyncsEveryResyncTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace, timeout = 2 * time.Second, 30 * time.Second
		st := newGapStore(10)
		l, c := controlRigWith(t, st, grace, timeout)
		got := wantResyncs(t, c, "at connection", [2]uint64{11, 0})
		replayDone(l, got[0].RequestID, 10)
		synctest.Wait()

		// 12..15 applied; 11 came unreadable (counted, seq unknown).
		st.add(12, 13, 14, 15)
		l.maxSeq.Store(15)
		l.C.Unappliable.Add(1)
		l.committed <- persist.Result{}
		synctest.Wait()
		time.Sleep(grace + 100*time.Millisecond)
		synctest.Wait()
		got = wantResyncs(t, c, "after gap_grace (a lost order is asked for after gap_grace)", [2]uint64{11, 0}, [2]uint64{11, 15})
		// The replay carries 11 unreadable again: still missing at replay_done.
		sent := answerResyncs(t, l, c, 4*timeout+time.Second, 15)
		if n := len(sent); n < 3 || n > 5 {
			t.Fatalf("%d resyncs in 4 resync_timeouts for a seq the replay does not deliver, want 4 (at most one per resync_timeout)", n)
		}
		for _, r := range sent {
			if r.FromSeq != 11 {
				t.Errorf("resync %+v does not ask for seq 11", r)
			}
		}
		checkPace(t, c, len(sent)+1, timeout)
		checkUndelivered(t, l, 11, 11)

		// Central sends seq 11 readable at last: filled, the alarm cleared,
		// no more resyncs.
		st.add(11)
		l.watermark.Store(15)
		l.noteOrders(nil, []customs.Order{{Seq: 11}}, persist.Result{Watermark: 15, MaxSeq: 15, Head: 15})
		l.committed <- persist.Result{}
		synctest.Wait()
		checkUndelivered(t, l, 0, 0)
		if sent := answerResyncs(t, l, c, 3*timeout, 15); len(sent) != 0 {
			t.Errorf("resyncs once the gap is filled: %+v", sent)
		}
	})
}

// TestControlAbsurdHeadResyncsEveryResyncTimeout: a signed head far beyond
// anything central can replay (its replay_done says up_to 10) keeps seqs
// 11.. open: they are alarmed and asked for at most once per
// resync_timeout. Orders central then issues are applied, and one lost
// among them is still asked for after gap_grace.
func TestControlAbsurdHeadResyncsEveryResyncTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace, timeout = 2 * time.Second, 30 * time.Second
		const absurd = uint64(1) << 60
		st := newGapStore(10)
		l, c := controlRigWith(t, st, grace, timeout)
		got := wantResyncs(t, c, "at connection", [2]uint64{11, 0})
		replayDone(l, got[0].RequestID, 10)
		synctest.Wait()

		l.head.Store(absurd)
		l.committed <- persist.Result{}
		synctest.Wait()
		time.Sleep(grace + 100*time.Millisecond)
		synctest.Wait()
		wantResyncs(t, c, "after gap_grace", [2]uint64{11, 0}, [2]uint64{11, absurd})
		sent := answerResyncs(t, l, c, 4*timeout+time.Second, 10)
		if n := len(sent); n < 3 || n > 5 {
			t.Fatalf("%d resyncs in 4 resync_timeouts for a head central cannot replay, want 4 (at most one per resync_timeout)", n)
		}
		checkPace(t, c, len(sent)+1, timeout)
		checkUndelivered(t, l, 11, absurd)

		// Central issues 11, 12 and 13; the broker loses 12.
		st.add(11, 13)
		l.watermark.Store(11)
		l.maxSeq.Store(13)
		l.noteOrders(nil, []customs.Order{{Seq: 11}, {Seq: 13}}, persist.Result{Watermark: 11, MaxSeq: 13, Head: absurd})
		l.committed <- persist.Result{}
		synctest.Wait()
		n0 := len(c.resyncs(t))
		time.Sleep(grace - 100*time.Millisecond)
		synctest.Wait()
		if rs := c.resyncs(t); len(rs) != n0 {
			t.Fatalf("resync before gap_grace: %+v", rs[n0:])
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		rs := c.resyncs(t)
		if len(rs) != n0+1 || rs[n0].FromSeq != 12 {
			t.Fatalf("after gap_grace, resyncs %+v; want one from seq 12 (the lost order)", rs[n0:])
		}
		checkUndelivered(t, l, 14, absurd)
	})
}
