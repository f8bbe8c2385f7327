package main

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/faregate/faregate/reader"
)

func TestReaderCommandsWithoutPCSC(t *testing.T) {
	if reader.PCSC {
		t.Skip("built with -tags pcsc: .ci/run tests these against pcscd")
	}
	for _, args := range [][]string{{"readers"}, {"tap", "--test-keys", "--reader", ""}} {
		root := newRootCmd()
		root.SetArgs(args)
		root.SetOut(io.Discard)
		err := root.ExecuteContext(t.Context())
		require.ErrorIs(t, err, reader.ErrNoPCSC)
		require.Equal(t, 1, exitCode(err))
		require.Contains(t, err.Error(), "-tags pcsc", "says how to get PC/SC support")
	}
}

func TestCardUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"card"},
		{"card", "--profile", "no-such-card"},
		{"tap", "--card", "visa-qvsdc", "--reader", "x"},
	} {
		out, code := run(t, args...)
		require.Equal(t, 2, code, "%v: %s", args, out)
	}
	out, code := run(t, "card", "--profile", "visa-qvsdc", "--once", "--vpcd", closedPort(t))
	require.Equal(t, 1, code, "vpcd unreachable: %s", out)
}

// TestCardCommand plays vpcd: the software card connects, answers the ATR
// request and SELECT PPSE, and with --once the command ends when vpcd hangs
// up.
func TestCardCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan int, 1)
	go func() {
		_, code := run(t, "card", "--profile", "visa-qvsdc", "--once", "--vpcd", ln.Addr().String())
		done <- code
	}()
	conn, err := ln.Accept()
	require.NoError(t, err)
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	exchange := func(msg ...byte) []byte {
		frame := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
		_, err := conn.Write(append(frame, msg...))
		require.NoError(t, err)
		var hdr [2]byte
		_, err = io.ReadFull(conn, hdr[:])
		require.NoError(t, err)
		rsp := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		_, err = io.ReadFull(conn, rsp)
		require.NoError(t, err)
		return rsp
	}
	require.Equal(t, []byte{0x3B, 0x80, 0x80, 0x01, 0x01}, exchange(4))
	rsp := exchange(append([]byte{0x00, 0xA4, 0x04, 0x00, 0x0E}, append([]byte("2PAY.SYS.DDF01"), 0x00)...)...)
	require.Equal(t, []byte{0x90, 0x00}, rsp[len(rsp)-2:])
	conn.Close()
	require.Equal(t, 0, <-done)
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
