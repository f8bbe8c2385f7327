package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckJSONKeys(t *testing.T) {
	for in, dup := range map[string]bool{
		`{"a": 1, "b": {"a": 2}, "c": [{"a": 1}, {"a": 2}]}`: false,
		`{"a": 1, "a": 2}`:                      true,
		`{"a": {"x": [1, {"y": 1, "y": 2}]}}`:   true,
		`[{"a": 1}, {"b": {"c": {}, "c": []}}]`: true,
		`{"a": [], "b": {}, "c": "a"}`:          false,
		`{"a": 1,`:                              false, // the parser reports it
	} {
		err := checkJSONKeys([]byte(in))
		require.Equal(t, dup, err != nil, "%s: %v", in, err)
	}
}

// FuzzCheckJSONKeys: never panics, and never refuses a document that has
// no duplicate key (one encoding/json re-encodes from a map).
//
//	go test ./cmd/faregate -run '^$' -fuzz FuzzCheckJSONKeys -fuzztime 30s
func FuzzCheckJSONKeys(f *testing.F) {
	files, err := filepath.Glob("../../testdata/oda/generated/*.json")
	require.NoError(f, err)
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkJSONKeys(b)
		var v any
		if json.Unmarshal(b, &v) != nil {
			return
		}
		again, err := json.Marshal(v) // maps: no duplicates
		require.NoError(t, err)
		require.NoError(t, checkJSONKeys(again))
	})
}
