package volumes

import "errors"

// Sentinel errors; branch on them with errors.Is.
var (
	// ErrNotFound: no volume of that name exists.
	ErrNotFound = errors.New("no such volume")
	// ErrExists: a volume of that name already exists.
	ErrExists = errors.New("volume already exists")
	// ErrInUse: the volume is used by a container.
	ErrInUse = errors.New("volume is in use")
	// ErrInvalid: bad input (a name, an option, a path).
	ErrInvalid = errors.New("invalid volume configuration")
	// ErrNotSupported: the platform or the option is not supported.
	ErrNotSupported = errors.New("not supported")
)
