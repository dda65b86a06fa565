//go:build testknobs

package main

import (
	"os"
	"strconv"

	"github.com/cargogate/cargogate/gateway/store"
)

// testStoreOptions, in binaries built for the tests only (-tags testknobs,
// as internal/testenv.Build does): CARGOGATE_TEST_STORE_MMAP sets the
// order store's initial memory map in bytes, so that a test can make bbolt
// remap it (production maps 1 GiB up front). A release build has no knob.
func testStoreOptions() store.Options {
	var o store.Options
	if v, err := strconv.Atoi(os.Getenv("CARGOGATE_TEST_STORE_MMAP")); err == nil && v > 0 {
		o.InitialMmapSize = v
	}
	return o
}
