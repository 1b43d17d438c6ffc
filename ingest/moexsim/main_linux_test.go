package moexsim

import (
	"testing"

	"fastfeed/internal/netns"
)

// On Linux the tests run in a private network namespace: the live tests send to and join
// the exchange's configured groups there, never on a real interface.
func TestMain(m *testing.M) { netns.RunTests(m) }
