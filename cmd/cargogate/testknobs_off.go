//go:build !testknobs

package main

import "github.com/cargogate/cargogate/gateway/store"

// testStoreOptions: a release build reads no test knob (see testknobs.go).
func testStoreOptions() store.Options { return store.Options{} }
