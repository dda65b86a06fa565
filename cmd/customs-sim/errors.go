package main

import "errors"

// errUsage: the flags were wrong; the problem was already printed.
var errUsage = errors.New("usage")
