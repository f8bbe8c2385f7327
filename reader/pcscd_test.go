//go:build pcsc

package reader

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The integration tests run the real stack: scard → libpcsclite → pcscd →
// vpcd driver → testCard through the vpcd bridge.
//
// By default TestMain starts a private pcscd of its own (in a private mount
// namespace, so it neither sees nor disturbs a system pcscd) with vpcd on a
// free port; this needs root, pcscd, unshare and vsmartcard-vpcd. With
// FAREGATE_VPCD=host:port the tests use the pcscd already running (as
// .ci/run or an operator started it) and its vpcd slot at that port
// (FAREGATE_VPCD_READER names the slot, default "Virtual PCD 00 00"); the
// pcscd restart test then skips. Without root or unshare they use the
// system pcscd the same way when it lists the vpcd slot; else they skip.
// FAREGATE_PCSCD_LOG=file makes the private pcscd log APDUs and debug
// messages to file.

const vpcdDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

// stack is the pcscd the tests talk to.
type stack struct {
	vpcd   string // the card side of the slot
	reader string // pcscd's name for the slot
	skip   string // why the integration tests cannot run ("" = they can)

	// own pcscd only
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
}

var pcsc stack

func TestMain(m *testing.M) {
	pcsc = setup()
	code := m.Run()
	pcsc.stop()
	if pcsc.dir != "" {
		os.RemoveAll(pcsc.dir)
	}
	os.Exit(code)
}

func setup() stack {
	if addr := os.Getenv("FAREGATE_VPCD"); addr != "" {
		name := os.Getenv("FAREGATE_VPCD_READER")
		if name == "" {
			name = "Virtual PCD 00 00"
		}
		return stack{vpcd: addr, reader: name}
	}
	pcscd, err := exec.LookPath("pcscd")
	if err != nil {
		pcscd = "/usr/sbin/pcscd"
	}
	for _, need := range []string{pcscd, vpcdDriver} {
		if _, err := os.Stat(need); err != nil {
			return stack{skip: "pcscd with the vpcd driver is not installed (apt-get install pcscd vsmartcard-vpcd), " +
				"or start one and set FAREGATE_VPCD=127.0.0.1:35963; see docs/reader.md"}
		}
	}
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		// No private pcscd: use the system's when it has the vpcd slot.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if names, err := List(ctx); err == nil && contains(names, "Virtual PCD 00 00") {
			return stack{vpcd: DefaultVPCD, reader: "Virtual PCD 00 00"}
		}
		return stack{skip: "starting a private pcscd needs root and unshare, and no running pcscd has the vpcd slot; " +
			"start pcscd with the vpcd driver (docs/reader.md)"}
	}
	dir, err := os.MkdirTemp("", "faregate-pcscd-")
	if err != nil {
		return stack{skip: err.Error()}
	}
	s := stack{dir: dir}
	if s.port, err = freePortPair(); err != nil {
		return stack{dir: dir, skip: err.Error()}
	}
	s.vpcd = fmt.Sprintf("127.0.0.1:%d", s.port)
	s.reader = "Virtual PCD 00 00"
	conf := fmt.Sprintf("FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x%X\nLIBPATH %s\nCHANNELID 0x%X\n",
		s.port, vpcdDriver, s.port)
	for _, err := range []error{
		os.MkdirAll(filepath.Join(dir, "conf"), 0o755),
		os.MkdirAll(filepath.Join(dir, "run"), 0o755),
		os.MkdirAll("/run/pcscd", 0o755), // the mount point
		os.WriteFile(filepath.Join(dir, "conf", "vpcd"), []byte(conf), 0o644),
	} {
		if err != nil {
			return stack{dir: dir, skip: err.Error()}
		}
	}
	// libpcsclite reads the socket name once per process: set it before the
	// first PC/SC call.
	os.Setenv("PCSCLITE_CSOCK_NAME", filepath.Join(dir, "run", "pcscd.comm"))
	if err := s.start(); err != nil {
		s.stop()
		return stack{dir: dir, skip: "could not start a private pcscd: " + err.Error()}
	}
	return s
}

// start runs pcscd in a mount namespace where /run/pcscd is s.dir/run, and
// waits until it lists the vpcd slot.
func (s *stack) start() error {
	logName, debug := filepath.Join(s.dir, "pcscd.log"), ""
	if name := os.Getenv("FAREGATE_PCSCD_LOG"); name != "" {
		logName, debug = name, " --debug --apdu"
	}
	log, err := os.OpenFile(logName, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	script := fmt.Sprintf("mount --bind %s /run/pcscd && exec pcscd --foreground --config %s%s",
		filepath.Join(s.dir, "run"), filepath.Join(s.dir, "conf"), debug)
	s.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	s.exited = exited
	cmd := s.cmd
	go func() { cmd.Wait(); close(exited) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		names, err := List(ctx)
		if err == nil && contains(names, s.reader) {
			return nil
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logName)
			return fmt.Errorf("pcscd exited: %s", strings.TrimSpace(string(out)))
		case <-ctx.Done():
			return fmt.Errorf("pcscd did not list %q in time (last error: %v)", s.reader, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends our own pcscd (never one we did not start).
func (s *stack) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// need skips t when the stack is not there.
func need(t testing.TB) {
	t.Helper()
	if pcsc.skip != "" {
		t.Skip(pcsc.skip)
	}
}

// freePortPair finds two consecutive free ports: vpcd listens on one per
// slot.
func freePortPair() (int, error) {
	for i := 0; i < 20; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+1))
		ln.Close()
		if err == nil {
			ln2.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no two consecutive free ports")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
