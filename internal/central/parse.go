package central

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cargogate/cargogate/gateway/customs"
)

// ParseOrders reads orders to submit (§6): JSON lines, one §3 order per line
// without seq, or one JSON array of them. Unlike the wire documents,
// submissions are strict: an unknown field is an error (a misspelt
// "expire_at" would otherwise silently release forever), as is a seq. Every
// order is validated; errors name the order's position and line, and wrap
// ErrInvalidOrder. It reads at most limit bytes (0: no limit).
func ParseOrders(r io.Reader, limit int64) ([]customs.Order, error) {
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if limit > 0 && int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: input larger than %d bytes", ErrInvalidOrder, limit)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	// lineAt is the line of the next value after offset off.
	lineAt := func(off int64) int {
		rest := data[min(off, int64(len(data))):]
		skip := len(rest) - len(bytes.TrimLeft(rest, " \t\r\n,"))
		return 1 + bytes.Count(data[:off+int64(skip)], []byte("\n"))
	}

	var orders []customs.Order
	var errs []error
	add := func(err error) bool {
		errs = append(errs, err)
		if len(errs) == 20 {
			errs = append(errs, errors.New("…more errors not shown"))
			return false
		}
		return true
	}
	check := func(i int, line int, o *customs.Order) bool {
		if o.Seq != 0 {
			return add(fmt.Errorf("order %d (line %d): seq %d: central assigns the seq; leave it out", i+1, line, o.Seq))
		}
		if err := o.Validate(false); err != nil {
			return add(fmt.Errorf("order %d (line %d): %w", i+1, line, err))
		}
		return true
	}

	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, fmt.Errorf("%w: JSON array: %w", ErrInvalidOrder, err)
		}
		// Decode element by element for positions and strictness.
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOrder, err)
		}
		for i := 0; dec.More(); i++ {
			line := lineAt(dec.InputOffset())
			var o customs.Order
			if err := dec.Decode(&o); err != nil {
				return nil, fmt.Errorf("%w: order %d (line %d): %w", ErrInvalidOrder, i+1, line, err)
			}
			orders = append(orders, o)
			if !check(i, line, &orders[i]) {
				break
			}
		}
	} else {
		for i := 0; ; i++ {
			var o customs.Order
			off := dec.InputOffset()
			err := dec.Decode(&o)
			if err == io.EOF {
				break
			}
			line := lineAt(off)
			if err != nil {
				return nil, fmt.Errorf("%w: order %d (line %d): %w", ErrInvalidOrder, i+1, line, err)
			}
			orders = append(orders, o)
			if !check(i, line, &orders[i]) {
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOrder, err)
	}
	if len(orders) == 0 {
		return nil, ErrNoOrders
	}
	return orders, nil
}
