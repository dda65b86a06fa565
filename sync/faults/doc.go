// Package faults is cargogate's fault suite: whole sites (real mosquitto,
// the real gateway binary on real pseudo-terminals, the reference central)
// driven through outages — a gateway offline behind a dropping broker,
// broker crashes, a cut, slow, reset and sliced link, gateway crashes during
// ingest and outbox drain, duplicated and reordered order messages, a full
// disk — each ending with a check against central's ledger. The package
// holds tests only; run it with
//
//	go test -race ./sync/faults/            # short form, for CI
//	go test ./sync/faults/ -long -v -timeout 60m   # long form (or CARGOGATE_FAULTS_LONG=1)
package faults
