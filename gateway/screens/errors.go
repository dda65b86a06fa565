package screens

import "errors"

// errNoStation: no running station is bound to the station id a
// handheld scans for.
var errNoStation = errors.New("the station is not running")
