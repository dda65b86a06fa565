package screens

import (
	"fmt"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/station"
)

// Orders gives the orders an explanation names (the order store).
type Orders interface {
	Order(seq uint64) (customs.Order, bool, error)
}

// Explain makes the lookup screen's Inspection of a verdict judged at at
// (station.Inspect), with every order its explanation names that the
// store still holds. applied and online describe the store and the link
// at the time.
func Explain(v station.Verdict, orders Orders, at time.Time, applied uint64, online bool) (Inspection, error) {
	out := Inspection{Code: v.Code, At: at.UTC(), AppliedSeq: applied, Online: online}
	d := v.Decision
	out.Pass, out.Reason = d.Pass, d.Reason
	if v.Subject == nil {
		out.Pass, out.Problem = false, v.Problem
		return out, nil
	}
	out.Subject, out.BasisSeq, out.Items, out.Blocking = v.Subject, d.BasisSeq, d.Items, d.Blocking
	seen := map[uint64]*customs.Order{}
	for _, step := range d.Chain {
		s := Step{Step: step}
		if step.Seq > 0 {
			o, ok := seen[step.Seq]
			if !ok {
				ord, found, err := orders.Order(step.Seq)
				if err != nil {
					return out, fmt.Errorf("order %d: %w", step.Seq, err)
				}
				if found {
					o = &ord
				}
				seen[step.Seq] = o
			}
			s.Order = o
		}
		out.Chain = append(out.Chain, s)
	}
	return out, nil
}
