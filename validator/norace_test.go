//go:build !race

package validator_test

const raceEnabled = false
