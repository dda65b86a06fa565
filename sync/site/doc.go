// Package site runs a whole site under faults: twenty or more real gateway
// processes, each with a gate station on real pseudo-terminals, the
// reference central issuing orders all along, stations scanning, over a
// real 3-node NATS cluster (internal/natstest) whose nodes are killed with
// SIGKILL and restarted, and with one gateway partitioned from its node and
// healed; and the same site on one mosquitto as the simple case. Each run
// ends with the fault suite's check against central's ledger, for every
// gateway. The package holds tests only; run it with
//
//	go test -race ./sync/site/                       # short form, for CI
//	go test ./sync/site/ -long -v -timeout 60m       # long form (or CARGOGATE_SITE_LONG=1)
package site
