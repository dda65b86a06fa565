package screens

import (
	"net/http"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

// Inspector decides a code from the local store, without telling any gate
// and without asking central, for the lookup screen. It works offline.
type Inspector interface {
	Inspect(code string) (Inspection, error)
}

// Inspection is a code's decision now, with the orders that made it.
type Inspection struct {
	Code    string           `json:"code"`
	Subject *customs.Subject `json:"subject,omitempty"` // nil: the code names nothing valid
	Problem string           `json:"problem,omitempty"` // why the code is invalid
	Pass    bool             `json:"pass"`
	Reason  string           `json:"reason"`
	// BasisSeq is the highest seq among the orders that decided.
	BasisSeq uint64          `json:"basis_seq,omitempty"`
	Items    int             `json:"items,omitempty"`
	Blocking []rules.Blocked `json:"blocking,omitempty"`
	Chain    []Step          `json:"chain"`
	// At is the time the decision was judged at (the gateway's clock).
	At time.Time `json:"at"`
	// AppliedSeq is the watermark of the store the decision was read from.
	AppliedSeq uint64 `json:"applied_seq"`
	// Online: the link to central was up (a lookup screen never asks it).
	Online bool `json:"online"`
}

// Step is one line of the explanation with the order it names, when the
// store has it.
type Step struct {
	rules.Step
	Order *customs.Order `json:"order,omitempty"`
}

// maxCode bounds a code typed into the lookup screen (§7: longer lines are
// invalid anyway).
const maxCode = 600

func (h *Hub) serveInspect(w http.ResponseWriter, r *http.Request) {
	if h.opt.Inspector == nil {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "lookup not available on this gateway"})
		return
	}
	code := r.URL.Query().Get("code")
	if code == "" || len(code) > maxCode {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give a code of 1 to 512 characters as ?code="})
		return
	}
	ins, err := h.opt.Inspector.Inspect(code)
	if err != nil {
		h.log.Error("inspect", "code", code, "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if ins.Chain == nil {
		ins.Chain = []Step{}
	}
	writeJSON(w, http.StatusOK, ins)
}
