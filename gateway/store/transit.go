package store

import (
	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/gateway/rules"
)

// Transit reads a transit's seals (sealed: it has a seal order) and its
// direct children, for the arrival check (§9).
func (s *Store) Transit(t customs.Subject) (seals []string, sealed bool, children []customs.Subject, err error) {
	err = s.View(func(v rules.View) error {
		st, err := v.State(t)
		if err != nil {
			return err
		}
		if st != nil && st.SealSeq > 0 {
			seals, sealed = st.Seals, true
		}
		children, err = v.Children(t)
		return err
	})
	return seals, sealed, children, err
}
