package sdk

import (
	"errors"
	"fmt"
)

// Checker is implemented by a Handler whose settings need checks that a Schema cannot
// express: one of two attributes, a URL that must parse, a duration, a header the handler
// sets itself. The runner calls Check for every handler block of the plugin before
// anything runs (and `runner validate` does), so a mistake is reported at its line in
// the job file instead of failing the first run hours later. Blocks with equal settings
// are checked once, and several checks may run at a time.
//
// Check receives a Run with only Settings set (defaults applied, as Run would see them);
// decode them with run.Decode, as in Run. It returns nil for valid settings, or an error:
// one made by InvalidSetting is reported at that attribute, several can be joined with
// errors.Join, and any other error is reported at the handler block. Check must not
// have side effects: it runs on every node and at every validation.
type Checker interface {
	Check(run *Run) error
}

// InvalidSetting returns an error about one attribute of the handler block, which the
// runner reports at that attribute's line. The message should say what is wrong and
// what would be right.
func InvalidSetting(attribute, format string, args ...any) error {
	return &SettingError{Attribute: attribute, Message: fmt.Sprintf(format, args...)}
}

// SettingError is an error about one attribute of a handler block (see InvalidSetting).
// At run time it reads like any other error, so a handler can return the same error from
// Check and, permanently, from Run.
type SettingError struct {
	// Attribute is the attribute's name in the handler block.
	Attribute string
	// Message says what is wrong with it.
	Message string
}

// Error returns the message prefixed with the attribute's name.
func (e *SettingError) Error() string { return e.Attribute + ": " + e.Message }

// Problem is one finding of a Check, as the runner receives it.
type Problem struct {
	// Attribute is the attribute at fault; empty for the block as a whole.
	Attribute string
	// Message says what is wrong.
	Message string
}

// Problems splits the error of a Check into its findings: each SettingError (also inside
// errors.Join or wrapped with %w) is one at its attribute, and any other error one for
// the block.
func Problems(err error) []Problem {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []Problem
		for _, e := range joined.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	var se *SettingError
	if errors.As(err, &se) {
		return []Problem{{Attribute: se.Attribute, Message: se.Message}}
	}
	return []Problem{{Message: err.Error()}}
}

// Check runs h's Checker, if it has one, on settings as the runner would: with the
// Schema's defaults applied. A handler without a Checker has no findings.
func Check(h Handler, settings []byte) []Problem {
	d, err := h.Schema().encodeDefaults()
	if err != nil {
		return []Problem{{Message: err.Error()}}
	}
	return check(h, d, settings) // the server's path, with its defaults encoded once
}

func check(h Handler, d defaults, settings []byte) (problems []Problem) {
	c, ok := h.(Checker)
	if !ok {
		return nil
	}
	settings, err := d.fill(settings)
	if err != nil {
		return []Problem{{Message: err.Error()}}
	}
	defer func() {
		// A bug in a Check must not take the plugin, and every run it serves, down.
		if v := recover(); v != nil {
			problems = []Problem{{Message: fmt.Sprintf("the plugin's Check panicked: %v", v)}}
		}
	}()
	return Problems(c.Check(&Run{Settings: settings}))
}
