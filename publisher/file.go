package publisher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fastfeed/internal/passhash"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"fastfeed/book"
	"fastfeed/mcast"
)

// MaxConfigSize is the largest configuration file LoadConfig reads.
const MaxConfigSize = 16 << 20

// fileConfig is the JSON configuration file (see LoadConfig).
type fileConfig struct {
	Instruments  []fileInstrument `json:"instruments"`
	Port         *uint16          `json:"port"`
	Groups       *fileGroups      `json:"groups"`
	Definitions  *fileDefinitions `json:"definitions"`
	BLine        *fileBLine       `json:"b_line"`
	Iface        *string          `json:"iface"`
	SendBuffer   *int             `json:"send_buffer"`
	Rate         *float64         `json:"rate"`
	Duration     *jsonDuration    `json:"duration"`
	Count        *int64           `json:"count"`
	Seed         *uint64          `json:"seed"`
	PayloadLimit *int             `json:"payload_limit"`
	Heartbeat    *jsonDuration    `json:"heartbeat"`
	Status       *bool            `json:"status"`
	Depth        *fileDepth       `json:"depth"`
	Retention    *fileRetention   `json:"retention"`
	Linger       *jsonDuration    `json:"linger"`
	DumpBooks    *string          `json:"dump_books"`
	Recovery     *fileRecovery    `json:"recovery"`
}

// fileInstrument is an instrument of fileConfig.
type fileInstrument struct {
	Symbol      string      `json:"symbol"`
	Tick        jsonDecimal `json:"tick"`
	PriceExp    *int8       `json:"price_exp"`
	SizeExp     int8        `json:"size_exp"`
	StartPrice  jsonDecimal `json:"start_price"`
	Weight      *float64    `json:"weight"`
	Type        string      `json:"type"`
	Currency    string      `json:"currency"`
	Description string      `json:"description"`
}

// fileGroups is the topic -> group mapping of fileConfig.
type fileGroups struct {
	Base   string  `json:"base"`
	Size   *uint32 `json:"size"`
	Single bool    `json:"single"`
}

// fileDefinitions is the definitions channel of fileConfig.
type fileDefinitions struct {
	Group    string        `json:"group"`
	Interval *jsonDuration `json:"interval"`
}

// fileBLine is the B line of fileConfig.
type fileBLine struct {
	Port             uint16 `json:"port"`
	GroupBase        string `json:"group_base"`
	DefinitionsGroup string `json:"definitions_group"`
}

// fileDepth is the simulated book depth of fileConfig.
type fileDepth struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// fileRetention is the retention of fileConfig.
type fileRetention struct {
	Datagrams  int `json:"datagrams"`
	Bytes      int `json:"bytes"`
	MaxRequest int `json:"max_request"`
}

// fileRecovery is the recovery service of fileConfig.
type fileRecovery struct {
	Listen           string        `json:"listen"`
	CompID           string        `json:"comp_id"`
	Users            []fileUser    `json:"users"`
	TLSCert          string        `json:"tls_cert"`
	TLSKey           string        `json:"tls_key"`
	TLSCA            string        `json:"tls_ca"`
	MaxLogonFailures int           `json:"max_logon_failures"`
	Lockout          *jsonDuration `json:"lockout"`
}

// fileUser is a login of fileConfig.
type fileUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// jsonDecimal is a decimal of the file, kept as written.
type jsonDecimal string

// UnmarshalJSON takes a JSON string holding a plain decimal or a JSON number.
func (d *jsonDecimal) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = jsonDecimal(s)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		return errors.New("null: want a decimal string or number")
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("%s: want a decimal string or number", b)
	}
	*d = jsonDecimal(n)
	return nil
}

// decimals returns the number of digits after the decimal point.
func (d jsonDecimal) decimals() int {
	if i := strings.IndexByte(string(d), '.'); i >= 0 {
		return len(d) - i - 1
	}
	return 0
}

// jsonDuration is a duration of the file, written as a string such as "1s".
type jsonDuration time.Duration

// UnmarshalJSON takes a string in time.ParseDuration's syntax.
func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: want a duration string such as \"1s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = jsonDuration(v)
	return nil
}

// LoadConfig reads the JSON configuration file at path into cfg, leaving the
// fields the file does not set as they are. Errors name the file, the key
// and what is wrong with it.
//
// The file is one JSON object (fixtures/pub.json is an example). Every key is optional except each instrument's symbol,
// tick and start_price; unknown keys are errors. Decimals (tick,
// start_price) are JSON strings or numbers taken exactly as written;
// durations are strings such as "1s" or "250ms".
//
//	{
//	  "instruments": [{"symbol": "SBER", "tick": "0.01", "price_exp": -2, "start_price": "285.40",
//	                   "size_exp": 0, "weight": 3, "type": "CS", "currency": "RUB", "description": "Sberbank"}],
//	  "port": 30001,
//	  "groups": {"base": "239.0.0.1", "size": 16777215, "single": false},
//	  "definitions": {"group": "239.0.0.0", "interval": "5s"},
//	  "b_line": {"port": 30002, "group_base": "239.192.0.1", "definitions_group": "239.192.0.0"},
//	  "iface": "127.0.0.1", "rate": 1000, "seed": 1, "heartbeat": "1s", "payload_limit": 1400,
//	  "status": true, "depth": {"min": 5, "max": 20},
//	  "retention": {"datagrams": 100000, "bytes": 67108864, "max_request": 10000},
//	  "recovery": {"listen": "127.0.0.1:9870", "comp_id": "FFPUB", "users": [{"username": "demo", "password": "demo"}],
//	               "tls_cert": "server.pem", "tls_key": "server-key.pem", "tls_ca": "clients-ca.pem",
//	               "max_logon_failures": 5, "lockout": "1m"}
//	}
//
// Also: "duration", "linger" (durations), "count" (incremental datagrams),
// "send_buffer" (bytes) and "dump_books" (a path), as the Config fields of
// those names. price_exp defaults to the number of decimals of the tick
// (0.0025: -4); weight is the instrument's relative activity (default 1);
// rate is incremental datagrams per second, 0 for as fast as possible.
func LoadConfig(path string, cfg *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("publisher: config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return fmt.Errorf("publisher: config %s: %w", path, err)
	}
	if len(data) > MaxConfigSize {
		return fmt.Errorf("publisher: config %s: larger than %d bytes", path, MaxConfigSize)
	}
	if err := ParseConfig(data, cfg); err != nil {
		return fmt.Errorf("publisher: config %s: %w", path, err)
	}
	return nil
}

// ParseConfig is LoadConfig on the file's contents; its errors name the key
// (and the line for JSON errors) but not the file.
func ParseConfig(data []byte, cfg *Config) error {
	var fc fileConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return jsonError(data, dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("line %d: data after the JSON object", lineOf(data, dec.InputOffset()))
	}
	return fc.apply(cfg)
}

func jsonError(data []byte, dec *json.Decoder, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: %v", lineOf(data, syn.Offset), syn)
	case errors.As(err, &typ):
		return fmt.Errorf("line %d: %s: got %s, want a %v", lineOf(data, typ.Offset), typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.EOF):
		return errors.New("empty file: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("unexpected end of file: the JSON object is not closed")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if key, ok := strings.CutPrefix(msg, "unknown field "); ok {
		// The decoder reads the whole object before it complains; find
		// the key's first use as a key instead.
		if off := keyOffset(data, key); off >= 0 {
			return fmt.Errorf("line %d: unknown key %s", lineOf(data, int64(off)), key)
		}
		return fmt.Errorf("unknown key %s", key)
	}
	return fmt.Errorf("line %d: %s", lineOf(data, dec.InputOffset()), msg)
}

// keyOffset returns the offset of the first quoted key followed by a colon,
// or -1.
func keyOffset(data []byte, quoted string) int {
	for from := 0; ; {
		i := bytes.Index(data[from:], []byte(quoted))
		if i < 0 {
			return -1
		}
		at := from + i
		rest := bytes.TrimLeft(data[at+len(quoted):], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			return at
		}
		from = at + 1
	}
}

func lineOf(data []byte, off int64) int {
	off = max(0, min(off, int64(len(data))))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

func (fc *fileConfig) apply(cfg *Config) error {
	if fc.Port != nil {
		if *fc.Port == 0 {
			return errors.New("port: 0 is not a port")
		}
		cfg.Port = *fc.Port
	}
	if g := fc.Groups; g != nil {
		base := netip.MustParseAddr(mcast.DefaultBase)
		if g.Base != "" {
			var err error
			if base, err = netip.ParseAddr(g.Base); err != nil {
				return fmt.Errorf("groups.base: %w", err)
			}
		}
		var err error
		if g.Single {
			if g.Size != nil && *g.Size != 1 {
				return fmt.Errorf("groups.size: %d with single: a single group has size 1", *g.Size)
			}
			cfg.Mapping, err = mcast.SingleGroupMapping(base)
		} else {
			size := uint32(mcast.DefaultSize)
			if g.Size != nil {
				size = *g.Size
			}
			cfg.Mapping, err = mcast.NewMapping(base, size)
		}
		if err != nil {
			return fmt.Errorf("groups: %w", err)
		}
	}
	if d := fc.Definitions; d != nil {
		if d.Group != "" {
			a, err := parseGroup(d.Group)
			if err != nil {
				return fmt.Errorf("definitions.group: %w", err)
			}
			cfg.DefinitionsGroup = a
		}
		if d.Interval != nil {
			if *d.Interval < jsonDuration(time.Millisecond) {
				return fmt.Errorf("definitions.interval: %v: want at least 1ms", time.Duration(*d.Interval))
			}
			cfg.DefinitionsInterval = time.Duration(*d.Interval)
		}
	}
	if b := fc.BLine; b != nil {
		cfg.B.Port = b.Port
		if b.GroupBase != "" {
			a, err := parseGroup(b.GroupBase)
			if err != nil {
				return fmt.Errorf("b_line.group_base: %w", err)
			}
			cfg.B.GroupBase = a
		}
		if b.DefinitionsGroup != "" {
			a, err := parseGroup(b.DefinitionsGroup)
			if err != nil {
				return fmt.Errorf("b_line.definitions_group: %w", err)
			}
			cfg.B.DefinitionsGroup = a
		}
		if !cfg.B.Enabled() {
			return errors.New("b_line: set port or group_base (or leave b_line out)")
		}
	}
	if fc.Iface != nil {
		a, err := netip.ParseAddr(*fc.Iface)
		if err != nil || !a.Is4() || a.IsMulticast() || a.IsUnspecified() {
			return fmt.Errorf("iface: %q is not a unicast IPv4 address", *fc.Iface)
		}
		cfg.Interface = a
	}
	if fc.SendBuffer != nil {
		if *fc.SendBuffer < 0 {
			return fmt.Errorf("send_buffer: %d is negative", *fc.SendBuffer)
		}
		cfg.SendBuffer = *fc.SendBuffer
	}
	if fc.Rate != nil {
		if !(*fc.Rate >= 0) {
			return fmt.Errorf("rate: %v: want incremental datagrams per second, >= 0 (0: as fast as possible)", *fc.Rate)
		}
		cfg.Rate = *fc.Rate
	}
	if fc.Duration != nil {
		if *fc.Duration < 0 {
			return errors.New("duration: negative")
		}
		cfg.Duration = time.Duration(*fc.Duration)
	}
	if fc.Count != nil {
		if *fc.Count < 0 {
			return errors.New("count: negative")
		}
		cfg.Count = *fc.Count
	}
	if fc.Seed != nil {
		cfg.Seed = *fc.Seed
	}
	if fc.PayloadLimit != nil {
		if *fc.PayloadLimit < MinPayloadLimit || *fc.PayloadLimit > MaxPayloadLimit {
			return fmt.Errorf("payload_limit: %d: want %d..%d", *fc.PayloadLimit, MinPayloadLimit, MaxPayloadLimit)
		}
		cfg.PayloadLimit = *fc.PayloadLimit
	}
	if fc.Heartbeat != nil {
		if *fc.Heartbeat < jsonDuration(time.Millisecond) {
			return fmt.Errorf("heartbeat: %v: want at least 1ms", time.Duration(*fc.Heartbeat))
		}
		cfg.Heartbeat = time.Duration(*fc.Heartbeat)
	}
	if fc.Status != nil {
		cfg.NoStatus = !*fc.Status
	}
	if d := fc.Depth; d != nil {
		if d.Min < 1 || d.Max < d.Min || d.Max > MaxDepthLimit {
			return fmt.Errorf("depth: min %d, max %d: want 1 <= min <= max <= %d", d.Min, d.Max, MaxDepthLimit)
		}
		cfg.MinDepth, cfg.MaxDepth = d.Min, d.Max
	}
	if r := fc.Retention; r != nil {
		switch {
		case r.Datagrams < 0:
			return fmt.Errorf("retention.datagrams: %d is negative", r.Datagrams)
		case r.Bytes != 0 && r.Bytes < MinRetentionBytes:
			return fmt.Errorf("retention.bytes: %d: want at least %d", r.Bytes, MinRetentionBytes)
		case r.MaxRequest < 0:
			return fmt.Errorf("retention.max_request: %d is negative", r.MaxRequest)
		}
		cfg.Retention, cfg.RetentionBytes, cfg.MaxRetransmit = r.Datagrams, r.Bytes, r.MaxRequest
	}
	if fc.Linger != nil {
		if *fc.Linger < 0 {
			return errors.New("linger: negative")
		}
		cfg.Linger = time.Duration(*fc.Linger)
	}
	if fc.DumpBooks != nil {
		cfg.DumpBooks = *fc.DumpBooks
	}
	if r := fc.Recovery; r != nil {
		if r.Listen != "" {
			cfg.Recovery.Listen = r.Listen
		}
		if r.CompID != "" {
			cfg.Recovery.CompID = r.CompID
		}
		if (r.TLSCert == "") != (r.TLSKey == "") || (r.TLSCA != "" && r.TLSCert == "") {
			return errors.New("recovery: tls_cert and tls_key go together, and tls_ca needs them")
		}
		cfg.Recovery.TLSCert, cfg.Recovery.TLSKey, cfg.Recovery.TLSCA = r.TLSCert, r.TLSKey, r.TLSCA
		if r.MaxLogonFailures < 0 {
			return fmt.Errorf("recovery.max_logon_failures: %d is negative", r.MaxLogonFailures)
		}
		cfg.Recovery.MaxLogonFailures = r.MaxLogonFailures
		if r.Lockout != nil {
			if *r.Lockout <= 0 {
				return errors.New("recovery.lockout: want a positive duration")
			}
			cfg.Recovery.Lockout = time.Duration(*r.Lockout)
		}
		seen := map[string]bool{}
		cfg.Recovery.Users = cfg.Recovery.Users[:0:0]
		for i, u := range r.Users {
			switch {
			case u.Username == "":
				return fmt.Errorf("recovery.users[%d].username: empty", i)
			case seen[u.Username]:
				return fmt.Errorf("recovery.users[%d].username: %q given twice", i, u.Username)
			}
			if err := passhash.Validate(u.Password); err != nil {
				return fmt.Errorf("recovery.users[%d].password: %w", i, err)
			}
			seen[u.Username] = true
			cfg.Recovery.Users = append(cfg.Recovery.Users, User(u))
		}
	}
	if fc.Instruments != nil {
		maxDepth := cfg.MaxDepth
		if maxDepth == 0 {
			maxDepth = max(DefaultMaxDepth, cfg.MinDepth)
		}
		ins, err := fileInstruments(fc.Instruments, maxDepth)
		if err != nil {
			return err
		}
		cfg.Instruments = ins
	}
	return nil
}

func parseGroup(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, err
	}
	return a, checkGroup(a)
}

func fileInstruments(fis []fileInstrument, maxDepth int) ([]Instrument, error) {
	if len(fis) == 0 {
		return nil, errors.New("instruments: empty list (leave the key out to generate instruments)")
	}
	out := make([]Instrument, len(fis))
	seen := make(map[string]int, len(fis))
	for i, fi := range fis {
		where := fmt.Sprintf("instruments[%d]", i)
		if fi.Symbol != "" {
			where += " (" + fi.Symbol + ")"
		}
		switch {
		case fi.Symbol == "":
			return nil, fmt.Errorf("%s.symbol: missing or empty", where)
		case fi.Tick == "":
			return nil, fmt.Errorf("%s.tick: missing", where)
		case fi.StartPrice == "":
			return nil, fmt.Errorf("%s.start_price: missing", where)
		}
		if j, ok := seen[fi.Symbol]; ok {
			return nil, fmt.Errorf("%s.symbol: duplicate of instruments[%d]", where, j)
		}
		seen[fi.Symbol] = i
		exp := -fi.Tick.decimals()
		if fi.PriceExp != nil {
			exp = int(*fi.PriceExp)
		}
		if exp < -MaxExp || exp > MaxExp {
			return nil, fmt.Errorf("%s.price_exp: %d out of range %d..%d", where, exp, -MaxExp, MaxExp)
		}
		if fi.SizeExp < -MaxExp || fi.SizeExp > MaxExp {
			return nil, fmt.Errorf("%s.size_exp: %d out of range %d..%d", where, fi.SizeExp, -MaxExp, MaxExp)
		}
		tick, err := book.ParseDecimal(string(fi.Tick), exp)
		if err != nil {
			return nil, fmt.Errorf("%s.tick: %q is not representable at price_exp %d (or not a plain decimal)", where, fi.Tick, exp)
		}
		if tick <= 0 {
			return nil, fmt.Errorf("%s.tick: %q: want a tick > 0", where, fi.Tick)
		}
		start, err := book.ParseDecimal(string(fi.StartPrice), exp)
		if err != nil {
			return nil, fmt.Errorf("%s.start_price: %q is not representable at price_exp %d (or not a plain decimal)", where, fi.StartPrice, exp)
		}
		in := Instrument{Symbol: fi.Symbol, PriceExp: int8(exp), SizeExp: fi.SizeExp, Tick: tick, StartPrice: start, Weight: 1,
			SecurityType: fi.Type, Currency: fi.Currency, Description: fi.Description}
		if fi.Weight != nil {
			in.Weight = *fi.Weight
		}
		if err := in.validate(maxDepth); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out[i] = in
	}
	return out, nil
}
