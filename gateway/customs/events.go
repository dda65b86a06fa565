package customs

// Events carries events from a gateway to central.
type Events struct {
	Type    string  `json:"type"`
	Site    string  `json:"site"`
	Gateway string  `json:"gateway"`
	Events  []Event `json:"events"`
}

// EventsAck is central's acknowledgement of events it holds durably
// (PROTOCOL amendment 3): at most MaxEvents ids, duplicates it already had
// included.
type EventsAck struct {
	Type    string   `json:"type"`
	Site    string   `json:"site"`
	Gateway string   `json:"gateway"`
	IDs     []string `json:"ids"`
}
