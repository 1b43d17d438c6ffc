package main

import (
	"testing"

	"fastfeed/internal/netns"
)

// Some subcommands' tests run the fastfeed binary, which sends multicast:
// the test binary runs in a private network namespace, never on a real
// interface.
func TestMain(m *testing.M) { netns.RunTests(m) }
