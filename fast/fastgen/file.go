package fastgen

import (
	"fmt"
	"os"
	"path/filepath"
)

// GenerateFile generates the codec of the template file in into the Go file out, with
// package name pkg. The header comment names the template file by its base name.
func GenerateFile(in, pkg, out string) error {
	xml, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	src, err := Generate(xml, Config{Package: pkg, Source: filepath.Base(in)})
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	return os.WriteFile(out, src, 0o644)
}
