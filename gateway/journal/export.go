package journal

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Export writes the events journalled at or after since ("at" in each
// event's JSON), delivered or not, to w as JSON lines in journal order:
// each event exactly as journalled. An entry whose data is not a JSON
// object with an "at" time is left out.
func (j *Journal) Export(w io.Writer, since time.Time) error {
	return j.ForEach(func(e Entry, delivered bool) error {
		var ev struct {
			At time.Time `json:"at"`
		}
		if err := json.Unmarshal(e.Data, &ev); err != nil || ev.At.Before(since) {
			return nil
		}
		_, err := fmt.Fprintf(w, "%s\n", e.Data)
		return err
	})
}
