package failover

import (
	"errors"
	"fmt"
)

// ErrNoBroker is returned by New for an empty list.
var ErrNoBroker = errors.New("no broker URL")

// BrokerError is returned by New for a URL that is not scheme://host:port.
type BrokerError struct{ URL string }

func (e *BrokerError) Error() string { return fmt.Sprintf("broker %q: want scheme://host:port", e.URL) }
