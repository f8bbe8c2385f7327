package tap_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/faregate/faregate/tap"
)

// FuzzDecodeBatch: hostile upload bodies never panic, and whatever decodes
// also validates.
func FuzzDecodeBatch(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.json")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	good, _ := json.Marshal(tap.Batch{Gate: "G-001", Taps: []tap.Record{record(f, 1)}})
	f.Add(good)
	f.Add([]byte(`{"gate":"G-001","taps":[{"id":"00000000-0000-7000-8000-000000000000"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := tap.DecodeBatch(body, "G-001")
		if err != nil {
			return
		}
		for i := range b.Taps {
			if err := b.Taps[i].Validate(); err != nil {
				t.Fatalf("decoded tap %d does not validate: %v", i, err)
			}
		}
	})
}
