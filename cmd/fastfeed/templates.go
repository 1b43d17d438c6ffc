package main

import (
	"errors"
	"os"

	"fastfeed/fast"
	"fastfeed/fixtures"
)

// defaultTemplates is where the feed templates are in the repository.
const defaultTemplates = "fixtures/templates.xml"

// loadTemplates loads the FAST templates: the file given with --templates (explicit), else
// fixtures/templates.xml found from the working directory or the binary, else the copy
// compiled into the binary.
func loadTemplates(path string, explicit bool) (*fast.Templates, error) {
	found, err := findFixture(path, explicit, "FAST templates", "--templates")
	if err == nil {
		return fast.LoadFile(found)
	}
	if explicit || path != defaultTemplates {
		return nil, err
	}
	if _, serr := os.Stat(path); serr != nil && !errors.Is(serr, os.ErrNotExist) {
		return nil, serr
	}
	return fixtures.Templates()
}
