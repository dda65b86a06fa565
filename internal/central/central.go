// Package central is the reference central customs of PROTOCOL.md §6 (the
// customs simulator): a durable ledger of a site's orders, numbered without
// gaps, signed and published over MQTT, replayed on resync, answered on
// lookup; and a record of the events and status the gateways send. It runs
// in-process (the demo embeds it) and behind cmd/customs-sim.
package central

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/cargogate/cargogate/gateway/customs"
	"github.com/cargogate/cargogate/internal/failover"
	"github.com/cargogate/cargogate/internal/fleet"
	"github.com/cargogate/cargogate/sync/envelope"
)

// Defaults of Options.
// inboxDepth is how many received messages may wait for the processor (a
// variable for tests).
var inboxDepth = 4096

const (
	DefaultHeadInterval        = 30 * time.Second
	DefaultMaxOrdersPerMessage = 1000
	DefaultPublishTimeout      = 10 * time.Second
	DefaultDecisionSlack       = 10 * time.Second
	// maxRequestID bounds the request_id of resync and lookup, which is echoed
	// back and so counts against the 1 MiB envelope.
	maxRequestID = 128
	// maxEventID bounds an event id, the dedupe key.
	maxEventID = 128
)

// Options configure a Central. Zero values take the documented defaults.
type Options struct {
	// Site is the site whose orders this central numbers ([A-Za-z0-9_-]{1,64}).
	Site string
	// Broker is the MQTT broker URL, tcp://host:port (ssl:// works with the
	// system roots). Needed by Run only; a list of one (Brokers).
	Broker string
	// Brokers, if set, are the brokers Run tries in turn, with capped,
	// jittered delays, failing over to the next when the connection is
	// lost, as the gateways do (internal/failover); Broker is then unused.
	Brokers []string
	// Signer signs everything central publishes; gateways trust its public
	// key under Signer.Kid.
	Signer envelope.Signer
	// GatewayKeys are the trusted gateway keys, kid "{site}/{gateway}". A
	// message from a gateway whose key is not here is rejected (fail closed);
	// AddGatewayKey adds keys at run time. Nil: none yet.
	GatewayKeys envelope.Keyring
	// DBPath is the ledger file (bbolt), created if missing. A ledger
	// belongs to one site; opening it for another is an error.
	DBPath string
	// ClientID is the MQTT client id. Default "customs-sim-{site}". The
	// session is persistent (clean session false), so two centrals of a site
	// on one broker need different ids.
	ClientID string
	// Username and Password authenticate to the broker; empty: none.
	Username, Password string
	// Logger receives the log; nil: discarded.
	Logger *slog.Logger
	// HeadInterval is the longest time between two head publications.
	// Default 30s.
	HeadInterval time.Duration
	// MaxOrdersPerMessage caps the orders in one published orders message
	// (a message is also kept under 1 MiB). Default 1000, at most 10,000.
	MaxOrdersPerMessage int
	// ReplayOrdersPerMessage caps the orders in one replay message (resync
	// answers), which may be larger than live ones to fill a gap faster.
	// Default MaxOrdersPerMessage, at most 10,000.
	ReplayOrdersPerMessage int
	// PublishTimeout bounds the wait for one publish token. Default 10s.
	PublishTimeout time.Duration
	// Now is the clock for issued_at and head.at, and for the time noted
	// before each commit. Default time.Now.
	Now func() time.Time
	// DecisionSlack bounds the audit's window (CheckPass, CheckStop): a
	// gateway may have used, for a scan read at `at`, orders committed up
	// to at+DecisionSlack — the lookup and processing between the read and
	// the decision, plus clock skew between gateway and central. Default
	// 10s.
	DecisionSlack time.Duration
}

func (o *Options) setDefaults() {
	if o.ClientID == "" {
		o.ClientID = "customs-sim-" + o.Site
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HeadInterval <= 0 {
		o.HeadInterval = DefaultHeadInterval
	}
	if o.MaxOrdersPerMessage <= 0 {
		o.MaxOrdersPerMessage = DefaultMaxOrdersPerMessage
	}
	if o.ReplayOrdersPerMessage <= 0 {
		o.ReplayOrdersPerMessage = o.MaxOrdersPerMessage
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DecisionSlack <= 0 {
		o.DecisionSlack = DefaultDecisionSlack
	}
}

// brokerURLs is Brokers, or Broker as a list of one.
func (o *Options) brokerURLs() []string {
	if len(o.Brokers) > 0 {
		return o.Brokers
	}
	if o.Broker == "" {
		return nil
	}
	return []string{o.Broker}
}

func (o *Options) validate() error {
	var errs []error
	if !customs.NameRE.MatchString(o.Site) {
		errs = append(errs, fmt.Errorf("site %q: must match [A-Za-z0-9_-]{1,64}", o.Site))
	}
	for _, b := range o.brokerURLs() {
		if u, err := url.Parse(b); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("broker %q: want tcp://host:port", b))
		}
	}
	if o.Signer.Kid == "" || len(o.Signer.Key) != ed25519.PrivateKeySize {
		errs = append(errs, errors.New("signer: needs a kid and an Ed25519 private key"))
	}
	if o.DBPath == "" {
		errs = append(errs, errors.New("db path: empty"))
	}
	if o.MaxOrdersPerMessage > customs.MaxOrders {
		errs = append(errs, fmt.Errorf("max orders per message %d: at most %d", o.MaxOrdersPerMessage, customs.MaxOrders))
	}
	if o.ReplayOrdersPerMessage > customs.MaxOrders {
		errs = append(errs, fmt.Errorf("replay orders per message %d: at most %d", o.ReplayOrdersPerMessage, customs.MaxOrders))
	}
	return errors.Join(errs...)
}

// Central is one site's reference central. Create it with New, start the
// MQTT side with Run, and Close it after Run has returned. Issue, the
// accessors and the HTTP handler work with or without Run.
type Central struct {
	opts Options
	log  *slog.Logger
	led  *ledger

	issueMu sync.Mutex // one Issue at a time: publish order = seq order

	keysMu sync.RWMutex
	keys   envelope.Keyring

	idx *index

	cliMu sync.RWMutex
	cli   mqtt.Client // set while Run is connected or reconnecting

	running   atomic.Bool
	brokers   atomic.Pointer[failover.Brokers] // set by Run
	in        chan mqtt.Message
	done      chan struct{} // closed when Run stops: handlers stop waiting
	headKick  chan struct{}
	connected chan struct{}
	// replySlots holds a token per reply in flight (sendReply); replies
	// counts their waiting goroutines, which Run waits for.
	replySlots chan struct{}
	replies    sync.WaitGroup
	connOnce   sync.Once

	statsMu sync.Mutex
	stats   Stats

	statusMu sync.Mutex
	status   map[string]customs.Status
	// fleet is the fleet view of the gateways' statuses (FleetHandler).
	fleet *fleet.Fleet

	// testHookHandled, if set before Run, is called by the processor after
	// each received message with its topic leaf and rejection reason ("" if
	// accepted).
	testHookHandled func(leaf, reason string)
}

// New opens (or creates) the ledger and rebuilds the in-memory indexes from
// it. It does not touch the network.
func New(opts Options) (*Central, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("central: %w", err)
	}
	keys := envelope.Keyring{}
	for kid, pub := range opts.GatewayKeys {
		keys[kid] = pub
	}
	c := &Central{
		opts:       opts,
		log:        opts.Logger.With("site", opts.Site),
		keys:       keys,
		idx:        newIndex(),
		in:         make(chan mqtt.Message, inboxDepth),
		done:       make(chan struct{}),
		headKick:   make(chan struct{}, 1),
		replySlots: make(chan struct{}, maxRepliesInFlight),
		connected:  make(chan struct{}),
		status:     map[string]customs.Status{},
		stats:      Stats{Rejected: map[string]uint64{}},
	}
	led, err := openLedger(opts.DBPath, opts.Site, c.idx)
	if err != nil {
		return nil, fmt.Errorf("central: %w", err)
	}
	c.led = led
	if c.fleet, err = fleet.New(fleet.Options{Site: opts.Site, Head: led.head, Log: c.log}); err != nil {
		led.close()
		return nil, fmt.Errorf("central: %w", err)
	}
	for kid, pub := range keys {
		c.addFleetGateway(kid, pub)
	}
	return c, nil
}

// Close closes the ledger. Call it after Run has returned.
func (c *Central) Close() error { return c.led.close() }

// Site is the site of this central.
func (c *Central) Site() string { return c.opts.Site }

// PublicKey is central's public key, to put in the gateways' configuration.
func (c *Central) PublicKey() ed25519.PublicKey { return c.opts.Signer.Public() }

// AddGatewayKey trusts pub for messages signed with kid, which is
// "{site}/{gateway}". It may be called while Run is running.
func (c *Central) AddGatewayKey(kid string, pub ed25519.PublicKey) {
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	c.keys[kid] = append(ed25519.PublicKey(nil), pub...)
	c.addFleetGateway(kid, pub)
}

// addFleetGateway shows a gateway of the site (kid {site}/{gateway}) in
// the fleet view.
func (c *Central) addFleetGateway(kid string, pub ed25519.PublicKey) {
	if gw, ok := strings.CutPrefix(kid, c.opts.Site+"/"); ok {
		if err := c.fleet.AddGateway(gw, pub); err != nil {
			c.log.Warn("gateway key not shown in the fleet view", "kid", kid, "err", err)
		}
	}
}

// Head is the highest assigned seq (0: no order yet).
func (c *Central) Head() uint64 { return c.led.head() }

// Stats are central's counters. Head and EventsReceived cover the whole
// ledger; the other counters cover this process.
type Stats struct {
	Head              uint64            `json:"head"`
	OrdersIssued      uint64            `json:"orders_issued"`
	EventsReceived    uint64            `json:"events_received"`
	DuplicatesDropped uint64            `json:"duplicates_dropped"`
	Rejected          map[string]uint64 `json:"rejected"`
	ResyncsAnswered   uint64            `json:"resyncs_answered"`
	LookupsAnswered   uint64            `json:"lookups_answered"`
	PublishErrors     uint64            `json:"publish_errors"`
	// InboxDropped counts received messages dropped (acknowledged
	// unhandled) because the inbox was full; their gateways send them again.
	InboxDropped uint64 `json:"inbox_dropped"`
	// Backlog is the received messages waiting for the processor;
	// RepliesInFlight its answers not yet acknowledged by the broker (at
	// most 64). A central falling behind shows here first.
	Backlog         int `json:"backlog"`
	RepliesInFlight int `json:"replies_in_flight"`
	// Connected: the broker connection is up now (tests wait for it
	// before issuing, so that orders go out live rather than by resync).
	Connected bool `json:"connected"`
}

// Stats returns a snapshot of the counters.
func (c *Central) Stats() Stats {
	c.statsMu.Lock()
	s := c.stats
	s.Rejected = make(map[string]uint64, len(c.stats.Rejected))
	for k, v := range c.stats.Rejected {
		s.Rejected[k] = v
	}
	c.statsMu.Unlock()
	s.Head = c.led.head()
	s.OrdersIssued = s.Head // seqs have no gaps: the head is the count
	s.EventsReceived = c.led.eventCount()
	s.Backlog = len(c.in)
	s.RepliesInFlight = len(c.replySlots)
	c.cliMu.RLock()
	s.Connected = c.cli != nil && c.cli.IsConnectionOpen()
	c.cliMu.RUnlock()
	return s
}

func (c *Central) count(f func(s *Stats)) {
	c.statsMu.Lock()
	f(&c.stats)
	c.statsMu.Unlock()
}

// GatewayStatus is the latest status received from gateway.
func (c *Central) GatewayStatus(gateway string) (customs.Status, bool) {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	s, ok := c.status[gateway]
	return s, ok
}

// GatewayStatuses is the latest status of every gateway heard from.
func (c *Central) GatewayStatuses() map[string]customs.Status {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	m := make(map[string]customs.Status, len(c.status))
	for k, v := range c.status {
		m[k] = v
	}
	return m
}

// Events are the events received from gateway ("" for every gateway), in the
// order received, each once.
func (c *Central) Events(gateway string) []customs.Event {
	evs, err := c.led.events(gateway)
	if err != nil {
		c.log.Error("reading events", "err", err)
	}
	return evs
}
