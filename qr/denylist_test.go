package qr_test

import (
	"github.com/faregate/faregate/denylist"
	"github.com/faregate/faregate/qr"
)

// The gate's deny list is the one the EMV gate syncs.
var (
	_ qr.DenyList = (*denylist.List)(nil)
	_ qr.DenyList = (*denylist.Replica)(nil)
)
