//go:build pcsc

package reader

import "testing"

// IntegrationStack tells package reader_test where the pcscd of the
// integration tests is: the vpcd address of its slot, pcscd's name for the
// slot, and why the tests must skip ("" when they can run).
func IntegrationStack() (vpcd, reader, skip string) { return pcsc.vpcd, pcsc.reader, pcsc.skip }

// WaitEmpty waits until pcscd reports the test slot empty.
func WaitEmpty(t testing.TB) { waitEmpty(t) }
