// Package functions holds the function app's function folders, one per
// function, each with its function.json: `make package` lifts the folders
// to the app's root, and the in-process host (internal/inproc) reads the
// bindings from here, so that both run the same function definitions.
package functions

import "embed"

// FS holds {Name}/function.json for every function.
//
//go:embed */function.json
var FS embed.FS
