package cron

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Resolve returns spec with every H form replaced by the values that seed,
// the job's name, picks: "H H * * *" might become "37 5 * * *". That is the
// expression Parse evaluates when given the same seed. A spec without H
// comes back unchanged. Resolve checks only the H forms; Parse checks the
// rest. Errors name the spec.
func Resolve(spec, seed string) (string, error) {
	r, err := resolveHash(spec, seed)
	if err != nil {
		return "", fmt.Errorf("cron: resolve %q: %w", spec, err)
	}
	return r, nil
}

// hashField is a cron field as the H forms see it.
type hashField struct {
	name     string
	min, max int // the field's bounds, which H(a-b) must respect
	// hmin and hmax bound what H and H/n pick from: the field's bounds, but
	// days 1 to 28 of the month, which every month has.
	hmin, hmax int
	names      []string // names[i] stands for min+i, if the field has names
}

// hashFieldAt returns the i-th of the six fields, seconds first.
func hashFieldAt(i int) hashField {
	switch i {
	case 0:
		return hashField{name: "second", max: 59, hmax: 59}
	case 1:
		return hashField{name: "minute", max: 59, hmax: 59}
	case 2:
		return hashField{name: "hour", max: 23, hmax: 23}
	case 3:
		return hashField{name: "day-of-month", min: 1, max: 31, hmin: 1, hmax: 28}
	case 4:
		return hashField{name: "month", min: 1, max: 12, hmin: 1, hmax: 12,
			names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}}
	default:
		return hashField{name: "day-of-week", max: 6, hmax: 6,
			names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}}
	}
}

// resolveHash is Resolve without the error's prefix.
func resolveHash(spec, seed string) (string, error) {
	if !strings.Contains(spec, "H") {
		return spec, nil
	}
	fields := strings.Fields(spec)
	if len(fields) < 5 || len(fields) > 6 || strings.HasPrefix(fields[0], "@") ||
		strings.HasPrefix(fields[0], "TZ=") || strings.HasPrefix(fields[0], "CRON_TZ=") {
		return spec, nil // not a field list: Parse says what is wrong
	}
	first := 6 - len(fields) // five fields have no seconds
	for i, f := range fields {
		if !strings.Contains(f, "H") {
			continue
		}
		hf := hashFieldAt(first + i)
		elems := strings.Split(f, ",")
		for j, e := range elems {
			if !strings.HasPrefix(e, "H") {
				continue // robfig reads the rest ("THU"), and rejects an H inside
			}
			if seed == "" {
				return "", errors.New("an H form needs a seed, the job's name, and none was given")
			}
			r, err := hf.resolve(e, seed, j)
			if err != nil {
				return "", fmt.Errorf("%q in the %s field: %w", e, hf.name, err)
			}
			elems[j] = r
		}
		fields[i] = strings.Join(elems, ",")
	}
	return strings.Join(fields, " "), nil
}

// resolve turns e, the j-th element of the field's list and one of H,
// H(a-b), H/n and H(a-b)/n, into a value or a stepped range.
func (f hashField) resolve(e, seed string, j int) (string, error) {
	errForm := errors.New("want H, H(a-b), H/n or H(a-b)/n")
	lo, hi := f.hmin, f.hmax
	rest := e[1:]
	if inner, ok := strings.CutPrefix(rest, "("); ok {
		r, after, ok := strings.Cut(inner, ")")
		if !ok {
			return "", errForm
		}
		a, b, ok := strings.Cut(r, "-")
		if !ok {
			return "", errForm
		}
		var err error
		if lo, err = f.value(a); err != nil {
			return "", err
		}
		if hi, err = f.value(b); err != nil {
			return "", err
		}
		if lo > hi {
			return "", fmt.Errorf("range %d-%d is empty", lo, hi)
		}
		rest = after
	}
	step := 0
	if rest != "" {
		s, ok := strings.CutPrefix(rest, "/")
		if !ok {
			return "", errForm
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return "", fmt.Errorf("step %q is not a whole number of at least 1", s)
		}
		step = n
	}
	h := hashOf(seed, f.name, j)
	size := uint64(hi - lo + 1)
	if step == 0 {
		return strconv.Itoa(lo + int(h%size)), nil
	}
	// The offset stays below the step, so the runs keep the step's rhythm
	// from the start of the range on.
	start := lo + int(h%min(uint64(step), size))
	return fmt.Sprintf("%d-%d/%d", start, hi, step), nil
}

// value parses a bound of H(a-b): a number or, in the month and
// day-of-week fields, a name as robfig spells it (case does not matter).
func (f hashField) value(s string) (int, error) {
	for i, name := range f.names {
		if strings.EqualFold(s, name) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is outside %d-%d", v, f.min, f.max)
	}
	return v, nil
}

// hashOf is the FNV-1a hash of the seed, the field's name and the element's
// place in the field's list. Every H job's schedule depends on it: changing
// it, or what it hashes, moves them all.
func hashOf(seed, field string, j int) uint64 {
	h := fnv1a(fnvOffset, seed)
	h = fnv1a(h, "\x00")
	h = fnv1a(h, field)
	h = fnv1a(h, "\x00")
	return fnv1a(h, strconv.Itoa(j))
}
