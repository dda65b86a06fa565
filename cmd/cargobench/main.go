// Command cargobench measures the gateway against the targets of issue 7:
// ingest against a bare verifying subscriber, ingest into a large store, the
// decision, scan to gate through ptys, the outbox drain, and the resources.
// It starts mosquitto (or uses -broker), wires the gateway's parts in
// process as `cargogate run` does, and prints one table.
//
// The short form (the test) runs in seconds with tiny sizes; the long form,
// by hand:
//
//	go run ./cmd/cargobench -subjects 10000000 -store-cache /var/tmp/cargobench
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cargobench:", err)
		os.Exit(1)
	}
}

// options are the flags; the zero of a count means its default.
type options struct {
	broker       string
	subjects     int
	cacheDir     string
	workDir      string
	ratioMsgs    int
	scaleOrders  int
	perMsg       int
	liveRate     int
	duration     time.Duration
	scans        int
	decisions    int
	outboxEvents int
	profileDir   string
	maxBatch     int
	batchBytes   int64
	perDelivered int
	keep         bool
	quiet        bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("cargobench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.broker, "broker", "", "broker URL (tcp://host:port); empty: start mosquitto on a free port. "+
		"A broker of your own needs max_queued_messages and max_inflight_messages ≥ 20000")
	fs.IntVar(&o.subjects, "subjects", 10_000_000, "parcels in the large store (a tenth of them in bags and ULDs)")
	fs.StringVar(&o.cacheDir, "store-cache", "", "directory keeping the filled large store between runs (empty: fill into the work dir, every run)")
	fs.StringVar(&o.workDir, "dir", "", "work directory (empty: a new one under the system temp dir, removed unless -keep)")
	fs.IntVar(&o.ratioMsgs, "ratio-msgs", 200_000, "messages of one order each for the ingest ratio (target 1)")
	fs.IntVar(&o.scaleOrders, "scale-orders", 600_000, "orders ingested into the large store (target 2)")
	fs.IntVar(&o.perMsg, "per-msg", 1000, "orders per message for target 2 and the live ingest")
	fs.IntVar(&o.liveRate, "live-rate", 20_000, "orders/s published while scanning (target 4)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long scans run while ingesting live (target 4)")
	fs.IntVar(&o.scans, "scans", 2000, "scans per scan-to-gate measurement")
	fs.IntVar(&o.decisions, "decisions", 200_000, "decisions timed in process (target 3)")
	fs.IntVar(&o.outboxEvents, "outbox-events", 1_000_000, "events buffered before the link returns (target 5)")
	fs.StringVar(&o.profileDir, "profile", "", "write CPU profiles of ingest and decide, and a heap profile, into this directory")
	fs.IntVar(&o.maxBatch, "max-batch", 0, "link MaxBatch, the most orders one commit takes (0: the link's default, as cargogate runs)")
	fs.Int64Var(&o.batchBytes, "max-batch-bytes", 0, "link MaxBatchBytes, the most one commit is estimated to write (0: the link's default; -1: no bound, as before issue 15)")
	fs.IntVar(&o.perDelivered, "delivered-per-commit", 0, "journal DeliveredPerCommit, the most delivered events one transaction moves (0: the journal's default; -1: all of a message, as before issue 15)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress display")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	for name, v := range map[string]int{"subjects": o.subjects, "ratio-msgs": o.ratioMsgs, "scale-orders": o.scaleOrders,
		"per-msg": o.perMsg, "live-rate": o.liveRate, "scans": o.scans, "decisions": o.decisions, "outbox-events": o.outboxEvents} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("-%s: must be ≥ 1", name))
		}
	}
	if o.perMsg > 10000 {
		errs = append(errs, errors.New("-per-msg: at most 10000 orders a message (§2)"))
	}
	if o.subjects < 5000 {
		errs = append(errs, errors.New("-subjects: at least 5000 (one full ULD)"))
	}
	return o, errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = f.err
		}
		b.close()
	}()
	if err := b.all(); err != nil {
		b.printTable(stdout)
		return err
	}
	b.printTable(stdout)
	return nil
}
