package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors a client can branch on with errors.Is.
var (
	ErrNotFound   = errors.New("not found")
	ErrConflict   = errors.New("conflict")
	ErrBadRequest = errors.New("bad request")
	// ErrNoDaemon: nothing answers on the socket.
	ErrNoDaemon = errors.New("berth daemon is not running")
	// ErrNoResult: a stream that should end with a Result ended without
	// one (the daemon went away, e.g. it was restarted).
	ErrNoResult = errors.New("the daemon closed the stream without a result")
)

// Error kinds carried in ErrorBody.Kind.
const (
	KindNotFound   = "not_found"
	KindConflict   = "conflict"
	KindBadRequest = "bad_request"
	KindInternal   = "internal"
)

// Error is a failed request as the client sees it.
type Error struct {
	Status  int
	Kind    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is matches the sentinel of the error's kind.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Kind == KindNotFound
	case ErrConflict:
		return e.Kind == KindConflict
	case ErrBadRequest:
		return e.Kind == KindBadRequest
	}
	return false
}

// StatusFor maps an error kind to its HTTP status.
func StatusFor(kind string) int {
	switch kind {
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindBadRequest:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// KindOf classifies err for the wire: the sentinels of this package
// (wrapped anywhere in err) give their kind, anything else is internal.
func KindOf(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return KindNotFound
	case errors.Is(err, ErrConflict):
		return KindConflict
	case errors.Is(err, ErrBadRequest):
		return KindBadRequest
	}
	return KindInternal
}

func errorFromBody(status int, body ErrorBody) error {
	if body.Error == "" {
		body.Error = fmt.Sprintf("daemon answered %d %s", status, http.StatusText(status))
	}
	if body.Kind == "" {
		body.Kind = KindInternal
	}
	return &Error{Status: status, Kind: body.Kind, Message: body.Error}
}
