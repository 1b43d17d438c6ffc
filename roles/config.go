package roles

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// maxConfigSize bounds a config file.
const maxConfigSize = 1 << 20

// mergeConfig sets fs's flags from the JSON object in the file at path, whose keys are
// flag names, and then sets the flags in explicit (given on the command line) again to
// their command-line values, so that they win. Values are what the flag takes, as a JSON
// string, number or boolean; a list flag (comma-separated) also takes an array. It
// returns the keys it set. Errors name the file, the line and the key.
func mergeConfig(fs *flag.FlagSet, path string, explicit map[string]bool) ([]string, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	cmdline := map[string]string{}
	for name := range explicit {
		cmdline[name] = fs.Lookup(name).Value.String()
	}
	keys, err := applyJSON(fs, data)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	for name, v := range cmdline {
		if err := fs.Set(name, v); err != nil {
			return nil, fmt.Errorf("--%s %q: %w", name, v, err)
		}
	}
	return keys, nil
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("--config %s: larger than %d bytes", path, maxConfigSize)
	}
	return data, nil
}

// applyJSON sets fs's flags from the keys of the JSON object data.
func applyJSON(fs *flag.FlagSet, data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	line := func() int { return lineOf(data, dec.InputOffset()) }
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(data, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("line %d: want a JSON object", line())
	}
	var keys []string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(data, err)
		}
		key := tok.(string) // an object's keys are strings
		at := line()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(data, err)
		}
		f := fs.Lookup(key)
		switch {
		case f == nil || key == "config" || key == "help":
			return nil, fmt.Errorf("line %d: unknown key %q (the keys are the flags of fastfeed %s)", at, key, fs.Name())
		case seen[key]:
			return nil, fmt.Errorf("line %d: key %q given twice", at, key)
		}
		seen[key] = true
		v, err := flagValue(raw)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", at, key, err)
		}
		if err := fs.Set(key, v); err != nil {
			return nil, fmt.Errorf("line %d: %q: %s: %w", at, key, v, err)
		}
		keys = append(keys, key)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("line %d: data after the JSON object", line())
	}
	return keys, nil
}

// flagValue turns a JSON value into a flag's text: a string as it is, a number or a
// boolean as written, an array of those joined by commas.
func flagValue(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	scalar := func(v any) (string, bool) {
		switch x := v.(type) {
		case string:
			return x, true
		case json.Number:
			return x.String(), true
		case bool:
			return strconv.FormatBool(x), true
		}
		return "", false
	}
	if s, ok := scalar(v); ok {
		return s, nil
	}
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, e := range list {
			s, ok := scalar(e)
			if !ok || strings.Contains(s, ",") {
				return "", fmt.Errorf("element %d of the list: want a string or a number without commas", i)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", errors.New("want a string, a number, a boolean or a list")
}

func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: %v", lineOf(data, syn.Offset), syn)
	case errors.Is(err, io.EOF):
		return errors.New("empty file: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("unexpected end of file: the JSON object is not closed")
	}
	return err
}

// lineOf returns the 1-based line of byte offset off in data.
func lineOf(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}
