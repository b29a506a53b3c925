package cron_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cronfleet/cronfleet/internal/cron"
)

// TestResolve pins the values H picks for some seeds: a change here moves
// every H job of every fleet.
func TestResolve(t *testing.T) {
	tests := []struct {
		spec, seed, want string
	}{
		{"H H * * *", "db-backup", "40 18 * * *"},
		{"H H * * *", "report", "53 11 * * *"},
		{"H H(0-5) * * *", "db-backup", "40 0 * * *"},
		{"H/15 * * * *", "db-backup", "10-59/15 * * * *"},
		{"H(0-29)/10 * * * *", "db-backup", "0-29/10 * * * *"},
		{"H/7 * H/10 * *", "db-backup", "0-59/7 * 10-28/10 * *"},
		{"H H * H/3 *", "cleanup", "9 11 * 1-12/3 *"},
		{"H H H H H H", "a", "16 0 2 24 3 4"},
		{"0 H(9-17) * * H(mon-fri)", "db-backup", "0 15 * * 2"},
		{"0 9 * * H(MON-FRI)", "db-backup", "0 9 * * 2"},
		{"0 0 1 H(jan-mar) *", "db-backup", "0 0 1 2 *"},
		// Each element of a list is hashed on its own.
		{"H,H * * * *", "db-backup", "40,11 * * * *"},
		{"0,H 9 * * *", "db-backup", "0,11 9 * * *"},
		// Without H the spec comes back as it was, with its spaces.
		{"  30   2 * * * ", "x", "  30   2 * * * "},
		{"@daily", "", "@daily"},
		{"30 2 * * *", "", "30 2 * * *"},
		{"0 9 * * THU", "", "0 9 * * THU"},
		{"0 9 * * MON-THU", "", "0 9 * * MON-THU"},
		// Not a field list: Parse reports it.
		{"@Hourly", "x", "@Hourly"},
		{"H * * *", "x", "H * * *"},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.seed, func(t *testing.T) {
			got, err := cron.Resolve(tt.spec, tt.seed)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q, %q) = %q, want %q", tt.spec, tt.seed, got, tt.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		spec, want string
	}{
		{"H(30-10) * * * *", `"H(30-10)" in the minute field: range 30-10 is empty`},
		{"H(0-60) * * * *", `"H(0-60)" in the minute field: 60 is outside 0-59`},
		{"0 0 H(0-3) * *", `"H(0-3)" in the day-of-month field: 0 is outside 1-31`},
		{"H(0-59) 0 0 1 1 H(1-7)", `"H(1-7)" in the day-of-week field: 7 is outside 0-6`},
		{"0 0 * * H(sat-sun)", `"H(sat-sun)" in the day-of-week field: range 6-0 is empty`},
		{"0 0 * * H(mon-xyz)", `"H(mon-xyz)" in the day-of-week field: "xyz" is not a number`},
		{"H(a-b) * * * *", `"H(a-b)" in the minute field: "a" is not a number`},
		{"H/0 * * * *", `"H/0" in the minute field: step "0" is not a whole number of at least 1`},
		{"0 H/x * * *", `"H/x" in the hour field: step "x" is not a whole number of at least 1`},
		{"H/99999999999999999999 * * * *", `"H/99999999999999999999" in the minute field: step "99999999999999999999" is not a whole number of at least 1`},
		{"Hx * * * *", `"Hx" in the minute field: want H, H(a-b), H/n or H(a-b)/n`},
		{"H(1-2 * * * *", `"H(1-2" in the minute field: want H, H(a-b), H/n or H(a-b)/n`},
		{"H(1) * * * *", `"H(1)" in the minute field: want H, H(a-b), H/n or H(a-b)/n`},
		{"H(1-2)x * * * *", `"H(1-2)x" in the minute field: want H, H(a-b), H/n or H(a-b)/n`},
		{"HH 0 * * * *", `"HH" in the second field: want H, H(a-b), H/n or H(a-b)/n`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := cron.Resolve(tt.spec, "job")
			want := fmt.Sprintf("cron: resolve %q: %s", tt.spec, tt.want)
			if err == nil || err.Error() != want {
				t.Errorf("Resolve(%q) error = %v, want %s", tt.spec, err, want)
			}
			_, err = cron.Parse(tt.spec, cron.Options{Seed: "job"})
			want = fmt.Sprintf("cron: parse %q: %s", tt.spec, tt.want)
			if err == nil || err.Error() != want {
				t.Errorf("Parse(%q) error = %v, want %s", tt.spec, err, want)
			}
		})
	}
}

func TestParseHash(t *testing.T) {
	tests := []struct {
		name string
		spec string
		o    cron.Options
		want string
	}{
		{"no seed", "H 2 * * *", cron.Options{},
			`cron: parse "H 2 * * *": an H form needs a seed, the job's name, and none was given`},
		{"H inside a range, for robfig", "1-H * * * *", cron.Options{Seed: "job"},
			`cron: parse "1-H * * * *": failed to parse int from H: strconv.Atoi: parsing "H": invalid syntax`},
		{"lower-case h is not H", "h * * * *", cron.Options{Seed: "job"},
			`cron: parse "h * * * *": failed to parse int from h: strconv.Atoi: parsing "h": invalid syntax`},
		{"never matches once resolved", "0 0 31 H(2-2) *", cron.Options{Seed: "job"},
			`cron: parse "0 0 31 H(2-2) *": never matches: no month has that day`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cron.Parse(tt.spec, tt.o)
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}

	// Parse with a seed evaluates what Resolve shows.
	loc := mustLoad(t, "Europe/Berlin")
	for _, spec := range []string{"H H * * *", "H/15 H(8-18) * * 1-5", "H H H H H H", "H H * H/3 *"} {
		for _, seed := range []string{"db-backup", "report", "ops@team"} {
			s, err := cron.Parse(spec, cron.Options{Location: loc, Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			resolved, err := cron.Resolve(spec, seed)
			if err != nil {
				t.Fatal(err)
			}
			r := mustParse(t, resolved, loc)
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			until := at.AddDate(2, 0, 0)
			if diff := cmp.Diff(format(cron.Expand(r, at, until, 50), loc), format(cron.Expand(s, at, until, 50), loc)); diff != "" {
				t.Errorf("Parse(%q, seed %q) and Parse(%q) differ (-resolved +hashed):\n%s", spec, seed, resolved, diff)
			}
		}
	}
}

// TestResolveSpread checks, over many seeds, that H stays within its range
// (days 1 to 28 of the month), that every value is picked by some seed, and
// that H/n starts below n.
func TestResolveSpread(t *testing.T) {
	type field struct{ lo, hi int }
	fields := []field{{0, 59}, {0, 59}, {0, 23}, {1, 28}, {1, 12}, {0, 6}}
	seen := make([]map[int]bool, len(fields))
	for i := range seen {
		seen[i] = map[int]bool{}
	}
	starts := map[int]bool{}
	for n := range 2000 {
		seed := "job-" + strconv.Itoa(n)
		r, err := cron.Resolve("H H H H H H", seed)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := cron.Resolve("H H H H H H", seed); again != r {
			t.Fatalf("Resolve(seed %q) = %q, then %q", seed, r, again)
		}
		for i, f := range strings.Fields(r) {
			v, err := strconv.Atoi(f)
			if err != nil || v < fields[i].lo || v > fields[i].hi {
				t.Fatalf("Resolve(seed %q) = %q: field %d out of %d-%d", seed, r, i, fields[i].lo, fields[i].hi)
			}
			seen[i][v] = true
		}
		step, err := cron.Resolve("H/15 * * * *", seed)
		if err != nil {
			t.Fatal(err)
		}
		var start int
		if _, err := fmt.Sscanf(step, "%d-59/15 * * * *", &start); err != nil || start > 14 {
			t.Fatalf("Resolve(H/15, seed %q) = %q", seed, step)
		}
		starts[start] = true
	}
	for i, f := range fields {
		if len(seen[i]) != f.hi-f.lo+1 {
			t.Errorf("field %d: %d of %d values picked", i, len(seen[i]), f.hi-f.lo+1)
		}
	}
	if len(starts) != 15 {
		t.Errorf("H/15 started at %d of 15 offsets", len(starts))
	}
}
