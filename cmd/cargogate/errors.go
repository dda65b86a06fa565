package main

import "errors"

// errHelp: --help or -h was given; the command's usage goes to stdout.
var errHelp = errors.New("help requested")
