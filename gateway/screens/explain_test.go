package screens

import (
	"errors"
	"testing"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
	"github.com/cargogate/cargogate/gateway/station"
)

// orderBook holds some orders and counts the questions.
type orderBook struct {
	have  map[uint64]customs.Order
	asked map[uint64]int
	err   error
}

func (b *orderBook) Order(seq uint64) (customs.Order, bool, error) {
	b.asked[seq]++
	if b.err != nil {
		return customs.Order{}, false, b.err
	}
	o, ok := b.have[seq]
	return o, ok, nil
}

// Explain attaches to each step the order it names, asking the store once
// per seq; an order the store no longer holds is left out, and a code that
// names nothing is STOP with its problem.
func TestExplain(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.FixedZone("CST", 8*3600))
	p := customs.Subject{Kind: customs.Parcel, ID: "RR123456785CN"}
	u := customs.Subject{Kind: customs.ULD, ID: "AKE12345MU"}
	v := station.Verdict{Code: "RR123456785CN", Subject: &p, Decision: rules.Decision{Reason: customs.ReasonContents, BasisSeq: 5,
		Chain: []rules.Step{{Subject: p, Seq: 3, What: "released"}, {Subject: u, Seq: 5, What: "held"}, {Subject: u, Seq: 3, What: "again"}, {Subject: p, What: "no order"}}}}
	book := &orderBook{have: map[uint64]customs.Order{3: {Seq: 3, Action: customs.Release, Subject: p}}, asked: map[uint64]int{}}
	in, err := Explain(v, book, at, 9, true)
	if err != nil {
		t.Fatal(err)
	}
	if in.Pass || in.Reason != customs.ReasonContents || in.BasisSeq != 5 || in.Subject == nil || *in.Subject != p ||
		in.AppliedSeq != 9 || !in.Online || in.At.Location() != time.UTC || !in.At.Equal(at) {
		t.Fatalf("inspection %+v", in)
	}
	if len(in.Chain) != 4 || in.Chain[0].Order == nil || in.Chain[0].Order.Seq != 3 || in.Chain[1].Order != nil ||
		in.Chain[2].Order != in.Chain[0].Order || in.Chain[3].Order != nil {
		t.Fatalf("chain %+v", in.Chain)
	}
	if book.asked[3] != 1 || book.asked[5] != 1 || book.asked[0] != 0 {
		t.Fatalf("asked %v", book.asked)
	}

	book.err = errors.New("disk")
	if _, err := Explain(v, book, at, 9, true); err == nil {
		t.Fatal("no error from a store that cannot read")
	}

	bad := station.Verdict{Code: "??", Problem: "not a known code", Decision: rules.Decision{Reason: customs.ReasonInvalidCode}}
	in, err = Explain(bad, book, at, 9, false)
	if err != nil || in.Pass || in.Subject != nil || in.Reason != customs.ReasonInvalidCode || in.Problem != "not a known code" || in.Chain != nil {
		t.Fatalf("invalid code: %+v, %v", in, err)
	}
}
