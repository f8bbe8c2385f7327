// Package validator is the gate: it runs the EMV kernel on a tapped card,
// authenticates it offline, decides whether to open, and keeps the tap.
package validator
