//go:build berth_init

package initbin

import _ "embed"

// Binary is the executable of ../berth-init.
//
//go:embed berth-init
var Binary []byte
