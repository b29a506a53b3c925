package fleettest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// RecordCommand is the argv of an exec handler that appends one line per handler start (and
// one per end) to file: what the end-to-end tests count. It sleeps for sleep in between.
func RecordCommand(file string, sleep time.Duration) []string {
	script := `echo "start $CRONFLEET_OCCURRENCE_ID $CRONFLEET_FENCING_TOKEN $CRONFLEET_NODE $CRONFLEET_ATTEMPT $(date +%s%3N) $$" >> "$RUNS"`
	if sleep > 0 {
		script += fmt.Sprintf(`; sleep %.3f`, sleep.Seconds())
	}
	script += `; echo "end $CRONFLEET_OCCURRENCE_ID $CRONFLEET_FENCING_TOKEN $CRONFLEET_NODE $CRONFLEET_ATTEMPT $(date +%s%3N) $$" >> "$RUNS"`
	return []string{"sh", "-c", script}
}

// Event is one line of a runs file.
type Event struct {
	Kind       string // "start" or "end"
	Occurrence string
	Token      int64
	Node       string
	Attempt    int
	At         time.Time
	Pid        int
}

// ReadRuns parses a runs file written by RecordCommand handlers. Handlers append to it
// while it is read, so a last line without its newline is being written: it is left for the
// next read.
func ReadRuns(file string) ([]Event, error) {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var out []Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 7 {
			return nil, fmt.Errorf("runs file: malformed line %q", sc.Text())
		}
		tok, err1 := strconv.ParseInt(fs[2], 10, 64)
		att, err2 := strconv.Atoi(fs[4])
		ms, err3 := strconv.ParseInt(fs[5], 10, 64)
		pid, err4 := strconv.Atoi(fs[6])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return nil, fmt.Errorf("runs file: malformed line %q", sc.Text())
		}
		out = append(out, Event{Kind: fs[0], Occurrence: fs[1], Token: tok, Node: fs[3], Attempt: att, At: time.UnixMilli(ms), Pid: pid})
	}
	return out, sc.Err()
}
