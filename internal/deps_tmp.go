//go:build tools

package internal

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/simonvetter/modbus"
	_ "github.com/transparency-dev/merkle"
	_ "go.uber.org/goleak"
)
