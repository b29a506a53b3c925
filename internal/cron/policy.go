package cron

import (
	"fmt"
	"strconv"
)

// GapPolicy says what becomes of a wall time that a spring-forward transition
// skips, for specs whose hour field is restricted. The zero value is GapShift.
type GapPolicy uint8

const (
	// GapShift runs a skipped wall time once, at the transition that ends
	// the gap; several skipped wall times of one gap run there once.
	GapShift GapPolicy = iota
	// GapSkip does not run a skipped wall time at all.
	GapSkip
)

// RepeatPolicy says which instants of a wall time that a fall-back
// transition repeats are due, for specs whose hour field is restricted. The
// zero value is RepeatOnceFirst.
type RepeatPolicy uint8

const (
	// RepeatOnceFirst runs a repeated wall time once, at its first instant.
	RepeatOnceFirst RepeatPolicy = iota
	// RepeatOnceLast runs a repeated wall time once, at its second instant.
	RepeatOnceLast
	// RepeatBoth runs a repeated wall time at both of its instants.
	RepeatBoth
)

var (
	gapNames    = [...]string{GapShift: "shift", GapSkip: "skip"}
	repeatNames = [...]string{RepeatOnceFirst: "once_first", RepeatOnceLast: "once_last", RepeatBoth: "both"}
)

// String returns the policy's name in job files: "shift" or "skip".
func (p GapPolicy) String() string {
	if int(p) < len(gapNames) {
		return gapNames[p]
	}
	return "GapPolicy(" + strconv.Itoa(int(p)) + ")"
}

// String returns the policy's name in job files: "once_first", "once_last"
// or "both".
func (p RepeatPolicy) String() string {
	if int(p) < len(repeatNames) {
		return repeatNames[p]
	}
	return "RepeatPolicy(" + strconv.Itoa(int(p)) + ")"
}

// ParseGapPolicy parses a gap policy as job files spell it: "shift" or
// "skip". Errors name the value and the allowed ones.
func ParseGapPolicy(s string) (GapPolicy, error) {
	for p, name := range gapNames {
		if s == name {
			return GapPolicy(p), nil
		}
	}
	return 0, fmt.Errorf("cron: gap policy %q: want %q or %q", s, gapNames[GapShift], gapNames[GapSkip])
}

// ParseRepeatPolicy parses a repeat policy as job files spell it:
// "once_first", "once_last" or "both". Errors name the value and the allowed
// ones.
func ParseRepeatPolicy(s string) (RepeatPolicy, error) {
	for p, name := range repeatNames {
		if s == name {
			return RepeatPolicy(p), nil
		}
	}
	return 0, fmt.Errorf("cron: repeat policy %q: want %q, %q or %q", s,
		repeatNames[RepeatOnceFirst], repeatNames[RepeatOnceLast], repeatNames[RepeatBoth])
}

// check returns an error naming p unless it is one of the policies above.
func (p GapPolicy) check() error {
	if int(p) >= len(gapNames) {
		return fmt.Errorf("gap policy %d is not one of %q, %q", uint8(p), gapNames[GapShift], gapNames[GapSkip])
	}
	return nil
}

// check returns an error naming p unless it is one of the policies above.
func (p RepeatPolicy) check() error {
	if int(p) >= len(repeatNames) {
		return fmt.Errorf("repeat policy %d is not one of %q, %q, %q", uint8(p),
			repeatNames[RepeatOnceFirst], repeatNames[RepeatOnceLast], repeatNames[RepeatBoth])
	}
	return nil
}
