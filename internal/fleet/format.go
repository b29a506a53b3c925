package fleet

import "time"

// FormatDuration shows a lateness or a run's duration at the precision a person reads in a
// list of runs: microseconds under a millisecond, tenths of a millisecond under a second,
// milliseconds above. The command line and the dashboard show the same runs, so they share
// it.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond && d > -time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second && d > -time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
