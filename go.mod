module fastfeed

go 1.26.0

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/gopacket/gopacket v1.7.7
	github.com/quickfixgo/quickfix v0.9.7
	github.com/quickfixgo/tag v0.1.0
	github.com/shopspring/decimal v1.6.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/pires/go-proxyproto v0.7.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/quagmt/udecimal v1.8.0 // indirect
	golang.org/x/net v0.55.0 // indirect
)
