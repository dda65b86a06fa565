package link

import (
	"context"
	"fmt"

	"github.com/oklog/ulid/v2"

	"github.com/cargogate/cargogate/gateway/customs"
)

// Lookup asks central for every order on s and its containers (§3) and
// returns once the reply is committed, or when ctx ends.
func (l *Link) Lookup(ctx context.Context, s customs.Subject) error {
	if !l.Online() {
		return ErrOffline
	}
	id := ulid.Make().String()
	ch := make(chan struct{})
	l.mu.Lock()
	l.lookups[id] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.lookups, id)
		l.mu.Unlock()
	}()
	doc := customs.Lookup{Type: customs.TypeLookup, Site: l.opts.Site, Gateway: l.opts.Gateway, RequestID: id, Subject: s}
	if err := l.publish(ctx, l.topic(customs.LeafLookup), doc, false); err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
