package screens

import "errors"

// errNoStation: a handheld's scan reached a station that is not running.
var errNoStation = errors.New("the station is not running")
