package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGrafanaDashboard: deploy/grafana/faregate.json is a dashboard whose
// queries name only metrics the gate (validator, dlsync) and the back
// office register, and that charts every one of them.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/faregate.json")
	require.NoError(t, err)
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &dash))
	require.Equal(t, "faregate", dash.UID)

	nameRE := regexp.MustCompile(`faregate_[a-z_]+`)
	registered := map[string]bool{}
	for _, f := range []string{"../../validator/metrics.go", "../../denylist/dlsync/metrics.go", "../../backend/metrics.go"} {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range regexp.MustCompile(`"(faregate_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			registered[m[1]] = true
		}
	}
	require.Greater(t, len(registered), 25)

	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			names := nameRE.FindAllString(tg.Expr, -1)
			require.NotEmpty(t, names, "%s: %s", p.Title, tg.Expr)
			for _, n := range names {
				base := n
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suf); ok && registered[b] {
						base = b
					}
				}
				require.True(t, registered[base], "%s: %s is no metric the code registers", p.Title, n)
				used[base] = true
			}
		}
	}
	for n := range registered {
		require.True(t, used[n], "metric %s is on no panel", n)
	}
}
