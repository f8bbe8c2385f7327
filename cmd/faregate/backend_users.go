package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/faregate/faregate/backend/console"
)

func newBackendHashPasswordCmd() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "hash-password [--user NAME] < password",
		Short: "Hash a console operator's password for --console-users",
		Long: `Reads a password (the first line of standard input, or typed twice without
echo on a terminal) and prints its bcrypt hash, or with --user the line
"NAME:hash" for the --console-users file of faregate backend. The password
must be 12 characters to 72 bytes; it is never printed nor stored.`,
		Args: noArgs("backend hash-password"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user != "" {
				if !console.ValidUserName(user) {
					return usageErr("hash-password: --user: 1 to 64 of A-Z a-z 0-9 . _ @ -")
				}
			}
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			h, err := console.HashPassword(pw)
			clear(pw)
			if errors.Is(err, console.ErrPasswordTooShort) || errors.Is(err, console.ErrPasswordTooLong) {
				return usageErr("hash-password: %w", err)
			}
			if err != nil {
				return err
			}
			if user != "" {
				h = user + ":" + h
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), h)
			return err
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "print NAME:hash, a line of the --console-users file")
	return cmd
}

// readPassword reads the first line of in, or on a terminal the password
// typed twice without echo.
func readPassword(in io.Reader, prompt io.Writer) ([]byte, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprint(prompt, "\nAgain: ")
		if err == nil {
			var b []byte
			b, err = term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(prompt)
			if err == nil && !bytes.Equal(a, b) {
				return nil, usageErr("hash-password: the passwords differ")
			}
		}
		if err != nil {
			return nil, fmt.Errorf("hash-password: %w", err)
		}
		return a, nil
	}
	sc := bufio.NewScanner(io.LimitReader(in, 1024))
	sc.Buffer(make([]byte, 0, 1024), 1024)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("hash-password: %w", err)
		}
		return nil, usageErr("hash-password: no password on standard input")
	}
	return bytes.TrimSuffix(sc.Bytes(), []byte("\r")), nil
}

// readConsoleUsers reads the --console-users file.
func readConsoleUsers(ctx context.Context, path string) (*console.Users, error) {
	b, err := readInput(ctx, "--console-users", path, console.MaxUsersFile)
	if err != nil {
		return nil, err
	}
	u, err := console.ParseUsers(b)
	if err != nil {
		return nil, usageErr("--console-users %s: %w", path, err)
	}
	return u, nil
}
