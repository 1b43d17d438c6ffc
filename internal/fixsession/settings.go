package fixsession

// A reader of quickfix settings files, the [DEFAULT] and [SESSION] sections users of
// quickfix and QuickFIX/J write, for the roles of fastfeed's FIX sessions.

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Settings is a quickfix settings file: its sessions, each with the [DEFAULT] section's
// keys under its own.
type Settings struct {
	File     string // the file's name, for errors
	Sessions []SessionSettings
}

// SessionSettings are the keys of one [SESSION] section, [DEFAULT] under them. Fields a
// file leaves out are zero (Set says which keys were given).
type SessionSettings struct {
	File string
	Line int // of the [SESSION] header

	ConnectionType             string // "acceptor" or "initiator"; empty if not given
	SenderCompID, TargetCompID string
	AcceptHost                 string // SocketAcceptHost
	AcceptPort                 int    // SocketAcceptPort
	ConnectHost                string // SocketConnectHost
	ConnectPort                int    // SocketConnectPort
	HeartBtInt                 time.Duration
	HeartBtIntOverride         bool
	ReconnectInterval          time.Duration
	LogonTimeout               time.Duration
	LogoutTimeout              time.Duration
	Persistence                Persistence // FileStorePath, FileLogPath, ResetOnLogon
	// TLS keys, as given (the roles map them onto their TLS options; MinTLSVersion
	// reads MinimumTLSVersion). UseSSL is SocketUseSSL=Y: an initiator's TLS with no
	// other TLS key.
	CertificateFile, PrivateKeyFile, CAFile, MinimumTLSVersion, ServerName string
	UseSSL                                                                 bool

	// Set holds each key given, with the line it was given on.
	Set map[string]int
}

// keyKind is how a settings key's value is checked.
type keyKind int

const (
	kindString keyKind = iota
	kindCompID
	kindHost
	kindPort
	kindSeconds
	kindBool
	kindPath
)

// settingsKeys are the keys fastfeed reads, and how each value is checked. Every other
// key is an error: unknownKeys names those quickfix knows but fastfeed does not support.
var settingsKeys = map[string]keyKind{
	"ConnectionType": kindString, "BeginString": kindString, "DefaultApplVerID": kindString,
	"SenderCompID": kindCompID, "TargetCompID": kindCompID,
	"SocketAcceptHost": kindHost, "SocketAcceptPort": kindPort,
	"SocketConnectHost": kindHost, "SocketConnectPort": kindPort,
	"HeartBtInt": kindSeconds, "HeartBtIntOverride": kindBool,
	"ReconnectInterval": kindSeconds, "LogonTimeout": kindSeconds, "LogoutTimeout": kindSeconds,
	"FileStorePath": kindPath, "FileLogPath": kindPath,
	"ResetOnLogon": kindBool, "ResetOnLogout": kindBool, "ResetOnDisconnect": kindBool,
	"PersistMessages": kindBool, "DynamicSessions": kindBool, "FileStoreSync": kindBool,
	"SocketCertificateFile": kindPath, "SocketPrivateKeyFile": kindPath, "SocketCAFile": kindPath,
	"SocketMinimumTLSVersion": kindString, "SocketServerName": kindHost, "SocketUseSSL": kindBool,
	"SocketInsecureSkipVerify": kindBool,
}

// quickfixOnly are keys of quickfix that fastfeed's sessions do not support.
var quickfixOnly = map[string]bool{
	"SenderSubID": true, "SenderLocationID": true, "TargetSubID": true, "TargetLocationID": true,
	"SessionQualifier": true, "StartTime": true, "EndTime": true, "StartDay": true, "EndDay": true,
	"Weekdays": true, "TimeZone": true, "TimeStampPrecision": true, "RefreshOnLogon": true,
	"ResetSeqTime": true, "DataDictionary": true, "TransportDataDictionary": true,
	"AppDataDictionary": true, "RejectInvalidMessage": true, "AllowUnknownMsgFields": true,
	"ValidateUserDefinedFields": true, "ValidateFieldsOutOfOrder": true, "CheckLatency": true,
	"MaxLatency": true, "SocketTimeout": true, "ProxyType": true, "ProxyHost": true,
	"ProxyPort": true, "ProxyUser": true, "ProxyPassword": true, "UseTCPProxy": true,
	"DynamicQualifier": true, "SocketPrivateKeyBytes": true, "SocketCertificateBytes": true,
	"SocketCABytes": true, "SQLLogDriver": true,
	"SQLLogDataSourceName": true, "SQLLogConnMaxLifetime": true, "MongoLogConnection": true,
	"MongoLogDatabase": true, "MongoLogReplicaSet": true, "SQLStoreDriver": true,
	"SQLStoreDataSourceName": true, "SQLStoreConnMaxLifetime": true, "MongoStoreConnection": true,
	"MongoStoreDatabase": true, "MongoStoreReplicaSet": true, "ResendRequestChunkSize": true,
	"EnableLastMsgSeqNumProcessed": true, "EnableNextExpectedMsgSeqNum": true,
}

// Bounds of a settings file.
const (
	maxSettingsSize = 1 << 20 // bytes
	maxSettingsLine = 4096    // bytes
	maxSessions     = 64
)

// SettingsError is an error in a settings file: the file, the line and the key at fault.
type SettingsError struct {
	File   string
	Line   int    // 0 if the error is about the whole file
	Key    string // empty if not about one key
	Reason string
}

func (e *SettingsError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

// ReadSettingsFile reads the quickfix settings file path.
func ReadSettingsFile(path string) (*Settings, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fix settings: %w", err)
	}
	defer f.Close()
	return ReadSettings(path, f)
}

// ReadSettings reads a quickfix settings file from r, named name in errors: lines of
// "Key=Value" under "[DEFAULT]" (at most one, keys shared by every session) and
// "[SESSION]" headers, blank lines and comments (a line starting with '#' or ';').
// Keys and section names are case-sensitive as in quickfix; spaces around keys and
// values are trimmed. An unknown key, a key quickfix has but fastfeed does not
// support, a key given twice in a section or a value of the wrong kind is a
// *SettingsError naming the line and the key. At least one [SESSION] is required.
func ReadSettings(name string, r io.Reader) (*Settings, error) {
	type entry struct {
		value string
		line  int
	}
	fail := func(line int, key, format string, a ...any) error {
		return &SettingsError{File: name, Line: line, Key: key, Reason: fmt.Sprintf(format, a...)}
	}
	var (
		defaults   = map[string]entry{}
		sessions   []map[string]entry
		headers    []int
		current    map[string]entry // nil before any section
		sawDefault bool
	)
	sc := bufio.NewScanner(io.LimitReader(r, maxSettingsSize+1))
	sc.Buffer(make([]byte, 0, 512), maxSettingsLine)
	line, size := 0, 0
	for sc.Scan() {
		line++
		size += len(sc.Bytes()) + 1
		if size > maxSettingsSize+1 {
			return nil, fail(0, "", "longer than %d bytes", maxSettingsSize)
		}
		text := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		switch {
		case text == "" || text[0] == '#' || text[0] == ';':
			continue
		case text[0] == '[':
			switch strings.ToUpper(text) {
			case "[DEFAULT]":
				if sawDefault {
					return nil, fail(line, "", "a second [DEFAULT] section")
				}
				if len(sessions) > 0 {
					return nil, fail(line, "", "[DEFAULT] after a [SESSION]: quickfix reads it first")
				}
				sawDefault, current = true, defaults
			case "[SESSION]":
				if len(sessions) == maxSessions {
					return nil, fail(line, "", "more than %d sessions", maxSessions)
				}
				current = map[string]entry{}
				sessions = append(sessions, current)
				headers = append(headers, line)
			default:
				return nil, fail(line, "", "unknown section %q: want [DEFAULT] or [SESSION]", text)
			}
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok:
			return nil, fail(line, "", "not Key=Value, a [DEFAULT] or [SESSION] header, or a comment: %q", clip(text))
		case current == nil:
			return nil, fail(line, k, "before any [DEFAULT] or [SESSION] section")
		case quickfixOnly[k]:
			return nil, fail(line, k, "a quickfix setting fastfeed does not support")
		}
		kind, known := settingsKeys[k]
		if !known {
			return nil, fail(line, clip(k), "unknown key")
		}
		if prev, dup := current[k]; dup {
			return nil, fail(line, k, "given twice in the section (first on line %d)", prev.line)
		}
		if err := checkValue(k, kind, v); err != nil {
			return nil, fail(line, k, "%v", err)
		}
		current[k] = entry{v, line}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail(line+1, "", "line longer than %d bytes", maxSettingsLine)
		}
		return nil, fmt.Errorf("fix settings %s: %w", name, err)
	}
	if len(sessions) == 0 {
		return nil, fail(0, "", "no [SESSION] section")
	}
	out := &Settings{File: name}
	for i, sec := range sessions {
		merged := map[string]entry{}
		for k, e := range defaults {
			merged[k] = e
		}
		for k, e := range sec {
			merged[k] = e
		}
		var s SessionSettings
		s.File, s.Line, s.Set = name, headers[i], map[string]int{}
		for k, e := range merged {
			s.Set[k] = e.line
			s.set(k, e.value)
		}
		if err := s.check(); err != nil {
			return nil, fail(s.Line, "", "[SESSION]: %v", err)
		}
		out.Sessions = append(out.Sessions, s)
	}
	return out, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func checkValue(key string, kind keyKind, v string) error {
	switch kind {
	case kindCompID:
		if v == "" || len(v) > 64 || strings.ContainsAny(v, "\x00\x01 ") {
			return fmt.Errorf("%q: want 1 to 64 characters, no spaces", clip(v))
		}
	case kindHost:
		if v == "" || strings.ContainsAny(v, " /") {
			return fmt.Errorf("%q: want a host name or IP address", clip(v))
		}
	case kindPort:
		if p, err := strconv.ParseUint(v, 10, 16); err != nil || p == 0 {
			return fmt.Errorf("%q: want a port, 1 to 65535", clip(v))
		}
	case kindSeconds:
		if n, err := strconv.ParseUint(v, 10, 31); err != nil || n == 0 || n > 86400 {
			return fmt.Errorf("%q: want whole seconds, 1 to 86400", clip(v))
		}
	case kindBool:
		if v != "Y" && v != "N" {
			return fmt.Errorf("%q: want Y or N", clip(v))
		}
	case kindPath:
		if v == "" || strings.ContainsRune(v, 0) {
			return fmt.Errorf("%q: want a path", clip(v))
		}
	}
	switch key {
	case "ConnectionType":
		if v != "acceptor" && v != "initiator" {
			return fmt.Errorf("%q: want acceptor or initiator", clip(v))
		}
	case "BeginString":
		if v != BeginString {
			return fmt.Errorf("%q: fastfeed's sessions are %s", clip(v), BeginString)
		}
	case "DefaultApplVerID":
		if v != DefaultApplVerID && v != "FIX.5.0SP2" {
			return fmt.Errorf("%q: fastfeed's sessions are FIX.5.0SP2 (9)", clip(v))
		}
	case "PersistMessages":
		if v != "N" {
			return errors.New(`"Y": fastfeed keeps no sent messages for resends (recovery is by ApplSeqNum)`)
		}
	case "DynamicSessions":
		if v != "Y" {
			return errors.New(`"N": fastfeed's acceptors take any client CompID that authenticates`)
		}
	case "SocketMinimumTLSVersion":
		switch v {
		case "TLS12", "TLS13":
		default:
			return fmt.Errorf("%q: want TLS12 or TLS13 (fastfeed takes TLS 1.2 at least)", clip(v))
		}
	case "SocketInsecureSkipVerify":
		if v != "N" {
			return errors.New(`"Y": fastfeed always verifies the service's certificate (give its CA in SocketCAFile)`)
		}
	}
	return nil
}

func (s *SessionSettings) set(key, v string) {
	secs := func() time.Duration { n, _ := strconv.Atoi(v); return time.Duration(n) * time.Second }
	port := func() int { n, _ := strconv.Atoi(v); return n }
	switch key {
	case "ConnectionType":
		s.ConnectionType = v
	case "SenderCompID":
		s.SenderCompID = v
	case "TargetCompID":
		s.TargetCompID = v
	case "SocketAcceptHost":
		s.AcceptHost = v
	case "SocketAcceptPort":
		s.AcceptPort = port()
	case "SocketConnectHost":
		s.ConnectHost = v
	case "SocketConnectPort":
		s.ConnectPort = port()
	case "HeartBtInt":
		s.HeartBtInt = secs()
	case "HeartBtIntOverride":
		s.HeartBtIntOverride = v == "Y"
	case "ReconnectInterval":
		s.ReconnectInterval = secs()
	case "LogonTimeout":
		s.LogonTimeout = secs()
	case "LogoutTimeout":
		s.LogoutTimeout = secs()
	case "FileStorePath":
		s.Persistence.FileStorePath = v
	case "FileLogPath":
		s.Persistence.FileLogPath = v
	case "ResetOnLogon":
		s.Persistence.ResetOnLogon = v == "Y"
	case "SocketCertificateFile":
		s.CertificateFile = v
	case "SocketPrivateKeyFile":
		s.PrivateKeyFile = v
	case "SocketCAFile":
		s.CAFile = v
	case "SocketMinimumTLSVersion":
		s.MinimumTLSVersion = v
	case "SocketServerName":
		s.ServerName = v
	case "SocketUseSSL":
		s.UseSSL = v == "Y"
	}
}

// check checks the keys of a session against each other.
func (s *SessionSettings) check() error {
	_, accept := s.Set["SocketAcceptPort"]
	_, connect := s.Set["SocketConnectPort"]
	switch {
	case s.ConnectionType == "acceptor" && connect:
		return errors.New("an acceptor with SocketConnectPort")
	case s.ConnectionType == "initiator" && accept:
		return errors.New("an initiator with SocketAcceptPort")
	case s.ConnectionType == "" && accept && connect:
		return errors.New("both SocketAcceptPort and SocketConnectPort: say ConnectionType")
	case (s.CertificateFile == "") != (s.PrivateKeyFile == ""):
		return errors.New("SocketCertificateFile and SocketPrivateKeyFile go together")
	}
	return nil
}

// MinTLSVersion returns SocketMinimumTLSVersion as a crypto/tls version: 0 if not
// given (TLS 1.2, the least fastfeed takes), tls.VersionTLS12 or tls.VersionTLS13.
func (s *SessionSettings) MinTLSVersion() uint16 {
	switch s.MinimumTLSVersion {
	case "TLS12":
		return tls.VersionTLS12
	case "TLS13":
		return tls.VersionTLS13
	}
	return 0
}

// IsAcceptor reports whether the session is an acceptor: ConnectionType acceptor, or
// none with a SocketAcceptPort.
func (s *SessionSettings) IsAcceptor() bool {
	_, accept := s.Set["SocketAcceptPort"]
	return s.ConnectionType == "acceptor" || s.ConnectionType == "" && accept
}

// IsInitiator reports whether the session is an initiator: ConnectionType initiator, or
// none with a SocketConnectPort.
func (s *SessionSettings) IsInitiator() bool {
	_, connect := s.Set["SocketConnectPort"]
	return s.ConnectionType == "initiator" || s.ConnectionType == "" && connect
}

// Acceptor returns the acceptor session of a role whose CompID is compID: the acceptor
// whose SenderCompID is compID, else the only acceptor with no SenderCompID or the file's
// only acceptor. It returns nil if the file configures no such acceptor.
func (st *Settings) Acceptor(compID string) *SessionSettings {
	return st.pick(func(s *SessionSettings) bool { return s.IsAcceptor() },
		func(s *SessionSettings) string { return s.SenderCompID }, compID)
}

// Initiator returns the initiator session of a client of the service whose CompID is
// target: the initiator whose TargetCompID is target, else the file's only initiator.
// It returns nil if the file configures no such initiator.
func (st *Settings) Initiator(target string) *SessionSettings {
	return st.pick(func(s *SessionSettings) bool { return s.IsInitiator() },
		func(s *SessionSettings) string { return s.TargetCompID }, target)
}

func (st *Settings) pick(is func(*SessionSettings) bool, id func(*SessionSettings) string, want string) *SessionSettings {
	if st == nil {
		return nil
	}
	var only *SessionSettings
	n := 0
	for i := range st.Sessions {
		s := &st.Sessions[i]
		if !is(s) {
			continue
		}
		if id(s) == want {
			return s
		}
		only = s
		n++
	}
	if n == 1 {
		return only
	}
	return nil
}

// Listen returns the acceptor's address, host:port, or "" if SocketAcceptPort is not
// set; the host defaults to 127.0.0.1 (fastfeed's services listen on loopback unless
// told otherwise).
func (s *SessionSettings) Listen() string {
	if s == nil || s.AcceptPort == 0 {
		return ""
	}
	host := s.AcceptHost
	if host == "" {
		host = "127.0.0.1"
	}
	return joinHostPort(host, s.AcceptPort)
}

// Connect returns the initiator's address, host:port, or "" if SocketConnectPort is not
// set; the host defaults to 127.0.0.1.
func (s *SessionSettings) Connect() string {
	if s == nil || s.ConnectPort == 0 {
		return ""
	}
	host := s.ConnectHost
	if host == "" {
		host = "127.0.0.1"
	}
	return joinHostPort(host, s.ConnectPort)
}

func joinHostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
