package reader

import (
	"net"
	"syscall"
)

// setQuickAck turns on TCP_QUICKACK so the kernel acknowledges at once
// instead of delaying the ACK (up to 40 ms) that vpcd's next write may be
// waiting for under Nagle's algorithm. Linux clears the flag again by
// itself, so the bridge sets it after every read.
func setQuickAck(conn net.Conn) error {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	}); err != nil {
		return err
	}
	return serr
}
