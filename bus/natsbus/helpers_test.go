package natsbus

import "fastfeed/feed"

func feedPattern(s string) feed.Pattern { return feed.Pattern(s) }
