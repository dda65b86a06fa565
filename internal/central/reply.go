package central

import (
	"context"
	"fmt"
	"time"
)

// maxRepliesInFlight bounds the replies (events_ack, lookup replies, replay
// messages and replay_done) published and not yet acknowledged by the
// broker. The processor does not wait for a reply's acknowledgement, only
// for a free place when this many are outstanding (backpressure): a broker
// slow to acknowledge (a JetStream cluster after a node's death) no longer
// holds back the events of every other gateway.
const maxRepliesInFlight = 64

// reply is one publication whose broker acknowledgement nobody waits for
// at the call: done is closed when it is known, err is then its outcome.
type reply struct {
	done chan struct{}
	err  error
}

// wait returns the reply's outcome once the broker acknowledged it (or it
// failed).
func (r *reply) wait() error {
	<-r.done
	return r.err
}

// sendReply publishes one QoS 1 message, not retained, without waiting for
// the broker's acknowledgement: a goroutine waits for it (at most
// PublishTimeout, or until ctx is done), counts a failure in PublishErrors
// and then calls then (if not nil) with the outcome. It waits only for a
// place among maxRepliesInFlight. Never called from a paho callback.
func (c *Central) sendReply(ctx context.Context, topic string, payload []byte, then func(error)) *reply {
	r := &reply{done: make(chan struct{})}
	finish := func(err error) {
		if err != nil {
			c.count(func(s *Stats) { s.PublishErrors++ })
		}
		r.err = err
		close(r.done)
		if then != nil {
			then(err)
		}
	}
	select {
	case c.replySlots <- struct{}{}:
	case <-ctx.Done():
		finish(fmt.Errorf("publish %s: %w", topic, ctx.Err()))
		return r
	}
	c.cliMu.RLock()
	client := c.cli
	c.cliMu.RUnlock()
	if client == nil || !client.IsConnectionOpen() {
		<-c.replySlots
		finish(ErrNotConnected)
		return r
	}
	tok := client.Publish(topic, 1, false, payload)
	c.replies.Add(1)
	go func() {
		defer c.replies.Done()
		t := time.NewTimer(c.opts.PublishTimeout)
		defer t.Stop()
		var err error
		select {
		case <-tok.Done():
			if err = tok.Error(); err != nil {
				err = fmt.Errorf("publish %s: %w", topic, err)
			}
		case <-t.C:
			err = fmt.Errorf("publish %s: no acknowledgement within %v", topic, c.opts.PublishTimeout)
		case <-ctx.Done():
			err = fmt.Errorf("publish %s: %w", topic, ctx.Err())
		}
		<-c.replySlots
		finish(err)
	}()
	return r
}
