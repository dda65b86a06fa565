package robustness

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// Shrinking: delta debugging over the operations of a failing history,
// then over the messages, orders and subjects inside them, keeping every
// cut after which the history still makes a PASS the oracle does not give.

type shrinker struct {
	t      testing.TB
	seed   uint64
	subs   *history
	trials int
	max    int
	until  time.Time
	kind   string // the failure kept: the text of Fail before " of "
}

func (s *shrinker) fails(ops []op) bool {
	if s.trials >= s.max || time.Now().After(s.until) {
		return false
	}
	s.trials++
	h := &history{Seed: s.seed, Ops: ops, Subjects: s.subs.Subjects}
	res := newRunner(s.t, h).run()
	return res.Fail != "" && strings.SplitN(res.Fail, " of ", 2)[0] == s.kind
}

func cloneOps(ops []op) []op {
	out := make([]op, len(ops))
	for i, o := range ops {
		o.Orders = slices.Clone(o.Orders)
		o.Subjects = slices.Clone(o.Subjects)
		var ms []*msg
		for _, m := range o.Msgs {
			ms = append(ms, m.clone())
		}
		o.Msgs = ms
		out[i] = o
	}
	return out
}

// ddmin removes chunks of ops while the history still fails.
func (s *shrinker) ddmin(ops []op) []op {
	n := 2
	for len(ops) >= 2 {
		chunk := (len(ops) + n - 1) / n
		reduced := false
		for start := 0; start < len(ops); start += chunk {
			cand := append(cloneOps(ops[:start]), cloneOps(ops[min(start+chunk, len(ops)):])...)
			if s.fails(cand) {
				ops, n, reduced = cand, max(n-1, 2), true
				break
			}
		}
		if !reduced {
			if n >= len(ops) {
				break
			}
			n = min(2*n, len(ops))
		}
	}
	return ops
}

// inner removes messages, orders and scanned subjects one by one.
func (s *shrinker) inner(ops []op) []op {
	try := func(cand []op) bool {
		if s.fails(cand) {
			ops = cand
			return true
		}
		return false
	}
	for i := 0; i < len(ops); i++ {
		for j := 0; j < len(ops[i].Msgs); {
			cand := cloneOps(ops)
			cand[i].Msgs = slices.Delete(cand[i].Msgs, j, j+1)
			cand[i].KillAfter = min(cand[i].KillAfter, len(cand[i].Msgs))
			if !try(cand) {
				j++
			}
		}
		for j := range ops[i].Msgs {
			for k := 0; k < len(ops[i].Msgs[j].Orders) && len(ops[i].Msgs[j].Orders) > 1; {
				cand := cloneOps(ops)
				cand[i].Msgs[j].Orders = slices.Delete(cand[i].Msgs[j].Orders, k, k+1)
				if !try(cand) {
					k++
				}
			}
		}
		for j := 0; j < len(ops[i].Orders); {
			cand := cloneOps(ops)
			cand[i].Orders = slices.Delete(cand[i].Orders, j, j+1)
			if !try(cand) {
				j++
			}
		}
		for j := 0; j < len(ops[i].Subjects) && len(ops[i].Subjects) > 1; {
			cand := cloneOps(ops)
			cand[i].Subjects = slices.Delete(cand[i].Subjects, j, j+1)
			if !try(cand) {
				j++
			}
		}
	}
	return ops
}

// shrinkAndReport shrinks a failing history and logs the reproducer.
func shrinkAndReport(t *testing.T, h *history, cfg genConfig) {
	res := newRunner(t, h).run()
	if res.Fail == "" {
		t.Logf("the failure did not replay (seed %d)", h.Seed)
		return
	}
	s := &shrinker{t: t, seed: h.Seed, subs: h, max: 600, until: time.Now().Add(4 * time.Minute),
		kind: strings.SplitN(res.Fail, " of ", 2)[0]}
	ops := cloneOps(h.Ops[:res.FailStep+1])
	ops = s.ddmin(ops)
	ops = s.inner(ops)
	ops = s.ddmin(ops)
	final := newRunner(t, &history{Seed: h.Seed, Ops: ops, Subjects: h.Subjects}).run()
	var b strings.Builder
	for i := range ops {
		b.WriteString("\n  ")
		b.WriteString(ops[i].String())
	}
	t.Errorf("shrunk reproducer (seed %d, %d of %d ops, %d trials): %s\n  => %s", h.Seed, len(ops), len(h.Ops), s.trials, b.String(), final.Fail)
}
