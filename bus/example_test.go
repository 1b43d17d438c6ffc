package bus_test

import (
	"fmt"
	"strings"

	"fastfeed/bus"
)

// A configuration gives each user the instruments it may see, in the patterns of the
// in-process subscription API.
func ExampleParseConfig() {
	cfg, err := bus.ParseConfig(strings.NewReader(`{
		"slow_limit": "1s",
		"users": [
			{"username": "demo", "password": "demo", "entitlements": ["*"]},
			{"username": "sber", "password": "sber", "entitlements": ["SB*", "G239.1.2.3:30001"]}
		]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range cfg.Users {
		fmt.Println(u.Username, u.Entitlements)
	}
	fmt.Println(cfg.SlowLimit)
	// Output:
	// demo [*]
	// sber [SB* G239.1.2.3:30001]
	// 1s
}
