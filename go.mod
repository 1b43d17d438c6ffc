module fastfeed

go 1.26.0

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0 // indirect
	github.com/gopacket/gopacket v1.7.7 // indirect
	github.com/pires/go-proxyproto v0.7.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/quagmt/udecimal v1.8.0 // indirect
	github.com/quickfixgo/enum v0.1.0 // indirect
	github.com/quickfixgo/field v0.1.0 // indirect
	github.com/quickfixgo/fix50sp2 v0.1.0 // indirect
	github.com/quickfixgo/fixt11 v0.1.0 // indirect
	github.com/quickfixgo/quickfix v0.9.7 // indirect
	github.com/quickfixgo/tag v0.1.0 // indirect
	github.com/shopspring/decimal v1.6.0 // indirect
	golang.org/x/net v0.55.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
