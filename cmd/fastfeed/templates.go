package main

import (
	"errors"
	"fmt"
	"os"

	"fastfeed/fast"
	"fastfeed/fixtures"
	"fastfeed/md"
)

// defaultTemplates is where the feed templates are in the repository.
const defaultTemplates = "fixtures/templates.xml"

// loadTemplates loads the FAST templates: the file given with --templates (explicit), else
// fixtures/templates.xml found from the working directory or the binary, else the copy
// compiled into the binary. They must hold the messages fastfeed's feed is made of.
func loadTemplates(path string, explicit bool) (*fast.Templates, error) {
	ts, where, err := findTemplates(path, explicit)
	if err != nil {
		return nil, err
	}
	if _, err := md.NewCodec(ts); err != nil {
		return nil, fmt.Errorf("--templates %s: %w", where, err)
	}
	return ts, nil
}

func findTemplates(path string, explicit bool) (*fast.Templates, string, error) {
	found, err := findFixture(path, explicit, "FAST templates", "--templates")
	if err == nil {
		ts, err := fast.LoadFile(found)
		return ts, found, err
	}
	if explicit || path != defaultTemplates {
		return nil, "", err
	}
	if _, serr := os.Stat(path); serr != nil && !errors.Is(serr, os.ErrNotExist) {
		return nil, "", serr
	}
	ts, err := fixtures.Templates()
	return ts, "(compiled in)", err
}
