package testenv

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// SeedEnv names the environment variable that replays a randomized test:
// CARGOGATE_SEED=N makes Seed return N instead of a seed from the clock.
const SeedEnv = "CARGOGATE_SEED"

// Seed returns the seed for a test's random choices, from the clock unless
// CARGOGATE_SEED is set, and logs it so that a failure can be replayed.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(SeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: not an unsigned integer", SeedEnv, v)
		}
		seed = n
	}
	t.Logf("seed %d (replay: %s=%d)", seed, SeedEnv, seed)
	return seed
}
