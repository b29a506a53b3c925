package sdk

import "errors"

// Permanent marks err as an error that retrying cannot fix, such as
// invalid settings or a request the far end refused for good: the runner
// records the failure and does not retry the occurrence, whatever the job's
// retry policy. Permanent(nil) is nil. The mark survives wrapping with %w
// and the trip over the wire; the message is err's.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }
