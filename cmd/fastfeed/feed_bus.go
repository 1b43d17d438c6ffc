package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"fastfeed/bus"
	"fastfeed/feed"
)

// defaultBusConfig is the OMS service configuration fastfeed feed --serve-fix reads.
const defaultBusConfig = "fixtures/bus.json"

// startBus starts the OMS distribution service of h on --serve-fix.
func startBus(ctx context.Context, h *feed.Handler, f feedFlags, explicit bool, cfg feed.Config, log *slog.Logger) (*bus.Bus, error) {
	path, err := findFixture(f.busConfig, explicit, "OMS service configuration", "--bus-config")
	if err != nil {
		return nil, err
	}
	bc, err := bus.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	bc.Listen = f.serveFIX
	bc.ChannelOf = bus.MappingChannels(cfg.Mapping, cfg.Port)
	bc.Logger = log
	b, err := bus.New(h, bc)
	if err != nil {
		return nil, err
	}
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// findFixture finds a fixture file: the path as given when explicit, else the path
// relative to the working directory or to the binary's place (bin/fastfeed in the
// repository, or beside it).
func findFixture(path string, explicit bool, what, flagName string) (string, error) {
	if explicit {
		return path, nil
	}
	candidates := []string{path}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		candidates = append(candidates, filepath.Join(dir, "..", path), filepath.Join(dir, path))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("%s %s not found in the working directory or beside the binary: give %s FILE", what, path, flagName)
}
