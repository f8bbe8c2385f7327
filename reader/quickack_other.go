//go:build !linux

package reader

import "net"

// setQuickAck does nothing: TCP_QUICKACK is Linux only.
func setQuickAck(net.Conn) error { return nil }
