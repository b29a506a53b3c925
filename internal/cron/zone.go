package cron

import (
	"fmt"
	"time"

	// Embedded so that every node resolves every IANA zone, with or without a
	// zoneinfo directory on the host.
	_ "time/tzdata"
)

// LoadLocation loads the IANA time zone name; "" means UTC. "Local" is
// rejected because it means the node's own zone, which differs between nodes.
// Errors name the value.
func LoadLocation(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, fmt.Errorf("cron: time zone %q is not allowed: it differs between nodes; use an IANA name such as \"Europe/Berlin\" or \"UTC\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("cron: unknown time zone %q: %w", name, err)
	}
	return loc, nil
}
