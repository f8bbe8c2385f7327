package console

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Operators who log in with a user name and a password are listed in a
// users file: one "name:hash" a line, the hash a bcrypt hash of the
// password (faregate backend hash-password makes one); blank lines and
// lines starting with # are ignored. The file holds no password.

// Bounds of a users file and of what a login may send.
const (
	MaxUsersFile      = 1 << 20
	maxUsers          = 1000
	maxUserName       = 64
	MinPasswordLength = 12
	MaxPasswordLength = 72 // bcrypt's limit, in bytes
	// PasswordCost is the bcrypt cost HashPassword uses (about 0.2 s a
	// check on a 2020s core: slow to guess, fast enough for a login).
	PasswordCost = 12
)

// Errors of ParseUsers and HashPassword.
var (
	ErrUsersFile        = errors.New("console: users file")
	ErrPasswordTooShort = fmt.Errorf("console: password shorter than %d characters", MinPasswordLength)
	ErrPasswordTooLong  = fmt.Errorf("console: password longer than %d bytes", MaxPasswordLength)
)

// Users are the operators who may log in with a password.
type Users struct {
	list  []user
	dummy []byte // checked when the name is nobody's, so the time is the same
}

type user struct {
	name     string
	nameHash [sha256.Size]byte
	hash     []byte // bcrypt, 60 bytes
}

// HashPassword returns the bcrypt hash of password at PasswordCost.
func HashPassword(password []byte) (string, error) {
	switch {
	case len([]rune(string(password))) < MinPasswordLength:
		return "", ErrPasswordTooShort
	case len(password) > MaxPasswordLength:
		return "", ErrPasswordTooLong
	}
	h, err := bcrypt.GenerateFromPassword(password, PasswordCost)
	if err != nil {
		return "", fmt.Errorf("console: hash password: %w", err)
	}
	return string(h), nil
}

// ParseUsers reads a users file (at most MaxUsersFile bytes, 1000 users).
func ParseUsers(b []byte) (*Users, error) {
	if len(b) > MaxUsersFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrUsersFile, MaxUsersFile)
	}
	u := &Users{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), 1024)
	cost := 0
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || !ValidUserName(name) {
			return nil, fmt.Errorf("%w: line %d: want name:bcrypt-hash, the name 1 to %d of A-Z a-z 0-9 . _ @ -", ErrUsersFile, n, maxUserName)
		}
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil || len(hash) != 60 {
			return nil, fmt.Errorf("%w: line %d: user %s: not a bcrypt hash (faregate backend hash-password)", ErrUsersFile, n, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: line %d: user %s twice", ErrUsersFile, n, name)
		}
		if len(u.list) == maxUsers {
			return nil, fmt.Errorf("%w: more than %d users", ErrUsersFile, maxUsers)
		}
		seen[name] = true
		cost = max(cost, c)
		u.list = append(u.list, user{name: name, nameHash: sha256.Sum256([]byte(name)), hash: []byte(hash)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUsersFile, err)
	}
	if len(u.list) == 0 {
		return nil, fmt.Errorf("%w: no user", ErrUsersFile)
	}
	var err error
	if u.dummy, err = bcrypt.GenerateFromPassword([]byte("faregate: nobody's password"), cost); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return u, nil
}

// ValidUserName reports whether s can be a user name: 1 to 64 of A-Z a-z
// 0-9 . _ @ -.
func ValidUserName(s string) bool {
	if s == "" || len(s) > maxUserName {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)
		if !ok {
			return false
		}
	}
	return true
}

// Len is the number of users.
func (u *Users) Len() int {
	if u == nil {
		return 0
	}
	return len(u.list)
}

// check returns the user name when password is that user's. It takes the
// same time whether the name exists or not: every name is compared in
// constant time and a password is always checked, against a dummy hash
// of the same cost when the name is nobody's.
func (u *Users) check(name, password string) (string, bool) {
	if u == nil || len(password) > MaxPasswordLength {
		return "", false
	}
	nh := sha256.Sum256([]byte(name))
	hash := bytes.Clone(u.dummy)
	found, who := 0, 0
	for i, e := range u.list {
		eq := subtle.ConstantTimeCompare(nh[:], e.nameHash[:])
		if len(e.hash) == len(hash) {
			subtle.ConstantTimeCopy(eq, hash, e.hash)
		}
		who = subtle.ConstantTimeSelect(eq, i, who)
		found |= eq
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if found != 1 || err != nil {
		return "", false
	}
	return u.list[who].name, true
}
