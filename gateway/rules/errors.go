package rules

import "errors"

// errTooDeep: the links go deeper than MaxDepth or loop; it decides STOP.
var errTooDeep = errors.New("links deeper than 4 levels or looping")
