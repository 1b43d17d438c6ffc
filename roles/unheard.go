package roles

import (
	"fmt"
	"log/slog"
	"strings"

	"fastfeed/feed"
)

// unheardTopics warns about the topics asked for that no security definition and no
// datagram ever named, and returns an error naming them (feed and replay then exit 1):
// their books are empty, not fresh.
func unheardTopics(h *feed.Engine, cfg feed.Config, log *slog.Logger) error {
	if h == nil || cfg.All {
		return nil
	}
	u := h.Unheard()
	if len(u) == 0 {
		return nil
	}
	log.Warn("topics never heard of: no security definition and no datagram named them; their books are empty, not fresh",
		"topics", strings.Join(u, ","))
	shown := strings.Join(u[:min(len(u), 10)], ", ")
	if len(u) > 10 {
		shown += ", ..."
	}
	return fmt.Errorf("%d of %d topics never heard of (no security definition, no data): %s; check the symbols, --group-base and --port",
		len(u), len(cfg.Topics), shown)
}
