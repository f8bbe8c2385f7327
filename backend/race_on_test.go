//go:build race

package backend

// raceOn: the race detector slows everything ~10×; the heaviest tests
// shrink (or skip when what they measure runs in another process).
const raceOn = true
