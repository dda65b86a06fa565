package arrival

import "errors"

// errNoneOpen is returned by Seal with no transit open.
var errNoneOpen = errors.New("no transit open")
