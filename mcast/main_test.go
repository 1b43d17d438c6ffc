package mcast_test

import (
	"testing"

	"fastfeed/internal/netns"
)

// The tests and benchmarks open sockets and send multicast: they run in a
// private network namespace, never on a real interface.
func TestMain(m *testing.M) { netns.RunTests(m) }
