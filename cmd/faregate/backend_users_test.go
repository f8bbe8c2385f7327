package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/faregate/faregate/backend/console"
)

// TestHashPasswordCommand: hash-password reads the password from standard
// input and prints a users-file line with its bcrypt hash, never the
// password; unusable input is exit 2.
func TestHashPasswordCommand(t *testing.T) {
	const pw = "correct horse battery staple"
	out, msg, code := dlRun(t, pw+"\r\n", "backend", "hash-password", "--user", "alice")
	require.Equal(t, 0, code, msg)
	line := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(line, "alice:$2a$12$"), line)
	require.NotContains(t, line, pw)
	require.NoError(t, bcrypt.CompareHashAndPassword([]byte(strings.TrimPrefix(line, "alice:")), []byte(pw)), "the line ending is not part of the password")
	u, err := console.ParseUsers([]byte(out))
	require.NoError(t, err)
	require.Equal(t, 1, u.Len())

	for _, tc := range []struct{ stdin, user string }{
		{"", ""},
		{"too short\n", ""},
		{strings.Repeat("p", 73) + "\n", ""},
		{pw + "\n", "al ice"},
	} {
		args := []string{"backend", "hash-password"}
		if tc.user != "" {
			args = append(args, "--user", tc.user)
		}
		out, msg, code := dlRun(t, tc.stdin, args...)
		require.Equal(t, 2, code, "%q %q: %s", tc.stdin, tc.user, msg)
		require.Empty(t, out)
	}
}
