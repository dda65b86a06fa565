package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/sync/envelope"
)

// ordersDoc is customs.Orders with the orders kept as the ledger's JSON, so a
// replay does not decode and re-encode them.
type ordersDoc struct {
	Type      string            `json:"type"`
	Site      string            `json:"site"`
	RequestID string            `json:"request_id,omitempty"`
	Orders    []json.RawMessage `json:"orders"`
}

// Issue validates orders, numbers them from Head()+1, commits them to the
// ledger (fsync), and then publishes them on customs/v1/{site}/orders and
// kicks the head. It returns the first and last seq assigned.
//
// The orders must come without seq. A missing issued_at is set to now; times
// are stored in UTC. If any order is invalid, nothing is issued and the error
// wraps ErrInvalidOrder. Once the commit succeeded Issue succeeds: a publish
// that fails (broker down, ctx done) is logged, and the gateways get the
// orders by resync. Issues are serialized, so orders reach the broker in seq
// order.
func (c *Central) Issue(ctx context.Context, orders []customs.Order) (first, last uint64, err error) {
	return c.issue(ctx, orders, true)
}

// Record is Issue without publishing: the orders are numbered and committed
// to the ledger, and neither they nor the head go out. Gateways learn of
// them by lookup, or by resync once a later head shows the gap. It stands
// for an orders message the broker dropped, and for declarations made for
// another site (异地申报), which only a lookup brings.
func (c *Central) Record(ctx context.Context, orders []customs.Order) (first, last uint64, err error) {
	return c.issue(ctx, orders, false)
}

func (c *Central) issue(ctx context.Context, orders []customs.Order, publish bool) (first, last uint64, err error) {
	if len(orders) == 0 {
		return 0, 0, ErrNoOrders
	}
	now := c.opts.Now().UTC()
	own := make([]customs.Order, len(orders))
	var errs []error
	for i, o := range orders {
		if err := c.checkOrder(&o, now); err != nil {
			errs = append(errs, fmt.Errorf("orders[%d]: %w", i, err))
			if len(errs) == 20 {
				errs = append(errs, errors.New("…more errors not shown"))
				break
			}
		}
		own[i] = o
	}
	if len(errs) > 0 {
		return 0, 0, fmt.Errorf("%w: %w", ErrInvalidOrder, errors.Join(errs...))
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}

	c.issueMu.Lock()
	defer c.issueMu.Unlock()
	raws, err := c.led.append(own, c.opts.Now())
	if err != nil {
		return 0, 0, err
	}
	for _, o := range own {
		c.idx.add(o)
	}
	first, last = own[0].Seq, own[len(own)-1].Seq
	if !publish {
		c.log.Info("orders recorded, not published", "first", first, "last", last)
		return first, last, nil
	}
	c.log.Info("orders issued", "first", first, "last", last)

	if err := c.publishOrders(ctx, customs.OrdersTopic(c.opts.Site), "", raws, c.opts.MaxOrdersPerMessage); err != nil {
		c.log.Warn("orders committed but not published; gateways will resync", "first", first, "last", last, "err", err)
	}
	c.kickHead()
	return first, last, nil
}

// checkOrder validates o as submitted and normalizes its times.
func (c *Central) checkOrder(o *customs.Order, now time.Time) error {
	if o.Seq != 0 {
		return fmt.Errorf("seq %d: central assigns the seq; leave it out", o.Seq)
	}
	if err := o.Validate(false); err != nil {
		return err
	}
	if o.IssuedAt.IsZero() {
		o.IssuedAt = now
	}
	o.IssuedAt = o.IssuedAt.UTC()
	if !o.ExpiresAt.IsZero() {
		o.ExpiresAt = o.ExpiresAt.UTC()
	}
	// Every order must fit alone in one message, or no gateway could ever
	// receive it. Only a link/unlink with thousands of long ids comes near.
	probe := *o
	probe.Seq = 1<<53 - 1
	raw, err := json.Marshal(&probe)
	if err != nil {
		return err
	}
	if !c.fits(len(raw), maxRequestID) {
		return fmt.Errorf("order of %d bytes: too large for one 1 MiB message; split its children", len(raw))
	}
	return nil
}

// fits reports whether an orders message whose orders take ordersBytes of
// JSON (commas included) fits in one envelope, with a request_id of up to
// reqIDLen bytes.
func (c *Central) fits(ordersBytes, reqIDLen int) bool {
	payload := len(`{"type":"orders","site":"","request_id":"","orders":[]}`) + len(c.opts.Site) + reqIDLen + ordersBytes
	env := len(`{"kid":"","payload":"","sig":""}`) + len(c.opts.Signer.Kid) + 88 + 4*((payload+2)/3)
	return env <= customs.MaxEnvelopeBytes-64 // margin for JSON escaping of the kid
}

// sealOrders cuts raws into signed orders messages of at most max orders and
// 1 MiB each, in order. An empty raws gives one message with no orders.
func (c *Central) sealOrders(requestID string, raws []json.RawMessage, max int) ([][]byte, error) {
	var msgs [][]byte
	seal := func(batch []json.RawMessage) error {
		if batch == nil {
			batch = []json.RawMessage{}
		}
		msg, err := c.opts.Signer.Seal(ordersDoc{Type: customs.TypeOrders, Site: c.opts.Site, RequestID: requestID, Orders: batch})
		if errors.Is(err, envelope.ErrTooLarge) && len(batch) > 1 { // the estimate was off: halve
			if err := c.sealSplit(requestID, batch, &msgs); err != nil {
				return err
			}
			return nil
		}
		if err != nil {
			return err
		}
		msgs = append(msgs, msg)
		return nil
	}
	start, size := 0, 0
	for i, r := range raws {
		if i > start && (i-start >= max || !c.fits(size+len(r)+1, len(requestID))) {
			if err := seal(raws[start:i]); err != nil {
				return nil, err
			}
			start, size = i, 0
		}
		size += len(r) + 1
	}
	if err := seal(raws[start:]); err != nil {
		return nil, err
	}
	return msgs, nil
}

func (c *Central) sealSplit(requestID string, batch []json.RawMessage, msgs *[][]byte) error {
	half := len(batch) / 2
	for _, part := range [][]json.RawMessage{batch[:half], batch[half:]} {
		more, err := c.sealOrders(requestID, part, len(part))
		if err != nil {
			return err
		}
		*msgs = append(*msgs, more...)
	}
	return nil
}

// publishOrders seals raws into orders messages and publishes them on topic,
// each waited for before the next, and stops at the first failure.
func (c *Central) publishOrders(ctx context.Context, topic, requestID string, raws []json.RawMessage, max int) error {
	msgs, err := c.sealOrders(requestID, raws, max)
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	for _, m := range msgs {
		if err := c.publish(ctx, topic, m, false); err != nil {
			return err
		}
	}
	return nil
}
