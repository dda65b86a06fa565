package link

import (
	"context"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Ingest runs only the order pipeline (verify, commit in arrival order, ack
// after the commit is durable) on the messages handed to Feed, with no
// broker and no control or delivery loop. It returns when ctx ends. The
// gateway itself uses Run; Ingest is the seam through which the robustness
// test (internal/robustness) drives the real ingest code message by message.
// A commit that fails leaves its messages unacknowledged, as under Run.
func (l *Link) Ingest(ctx context.Context) error { return l.newIngest().Run(ctx) }

// Feed hands one received message to the pipeline, as the MQTT client's
// handler does under Run. The message's Ack is called once its orders are
// committed, or once it is rejected for good (§2). Feed blocks while the
// pipeline's buffer is full.
func (l *Link) Feed(m mqtt.Message) { l.in <- m }
