package main

import "errors"

// errHelp: -h was asked for and answered; run returns nil.
var errHelp = errors.New("help")

// errUsage: the arguments were wrong; the problem was already printed.
var errUsage = errors.New("usage")
