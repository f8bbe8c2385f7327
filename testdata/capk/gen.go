//go:build ignore

// Command gen builds live.json, test.json and bad-checksum.json from the
// shared list of public CA keys (capk-public.json):
//
//	go run ./testdata/capk/gen.go /work/shared/capk-public.json testdata/capk
//
// live.json holds the keys a source labels live (openemv/emv-utils "… live",
// mrautio/emvpt "production list"), test.json those labelled test (marked
// "test": true). Keys no source labels are left out: a gate must not trust
// a key nobody vouches for. Expiry comes from the sources that give one
// (proxmark3, emv-tools; YYMMDD). bad-checksum.json holds the keys whose
// published checksum does not match their modulus and exponent (their source
// lists exponent 02; the checksum is that of exponent 03), as published, so
// tests can see them refused.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type source struct {
	Repo              string `json:"repo"`
	Label             string `json:"label"`
	SHA1ChecksumGiven string `json:"sha1_checksum_given"`
	IssuerName        string `json:"issuer_name"`
}

type public struct {
	Keys []struct {
		RID            string   `json:"rid"`
		Index          string   `json:"index"`
		Modulus        string   `json:"modulus"`
		Exponent       string   `json:"exponent"`
		SHA1Checksum   string   `json:"sha1_checksum"`
		ChecksumStatus string   `json:"checksum_status"`
		Labels         []string `json:"labels"`
		ExpiryYYMMDD   []string `json:"expiry_yymmdd"`
		Sources        []source `json:"sources"`
	} `json:"keys"`
}

type entry struct {
	RID          string `json:"rid"`
	Index        string `json:"index"`
	Modulus      string `json:"modulus"`
	Exponent     string `json:"exponent"`
	Expiry       string `json:"expiry,omitempty"`
	SHA1Checksum string `json:"sha1_checksum,omitempty"`
	Test         bool   `json:"test,omitempty"`
	Description  string `json:"description,omitempty"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run gen.go capk-public.json OUTDIR")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	check(err)
	var p public
	check(json.Unmarshal(raw, &p))
	var live, test, bad []entry
	for _, k := range p.Keys {
		var repos []string
		for _, s := range k.Sources {
			repos = append(repos, s.Repo)
		}
		e := entry{RID: k.RID, Index: k.Index, Modulus: k.Modulus, Exponent: k.Exponent,
			Description: strings.Join(k.Labels, "; ") + " (sources: " + strings.Join(repos, ", ") + ")"}
		if strings.HasPrefix(k.ChecksumStatus, "MISMATCH") {
			e.SHA1Checksum = k.Sources[0].SHA1ChecksumGiven
			e.Description = "published checksum does not match (source: " + strings.Join(repos, ", ") + ")"
			bad = append(bad, e)
			continue
		}
		e.SHA1Checksum = k.SHA1Checksum
		if len(k.ExpiryYYMMDD) > 1 {
			panic("several expiries for " + k.RID + "/" + k.Index)
		}
		if len(k.ExpiryYYMMDD) == 1 {
			d := k.ExpiryYYMMDD[0]
			e.Expiry = "20" + d[0:2] + "-" + d[2:4] + "-" + d[4:6]
		}
		isLive, isTest := false, false
		for _, l := range k.Labels {
			isLive = isLive || strings.Contains(l, " live") || l == "emvpt production list"
			isTest = isTest || strings.Contains(l, " test")
		}
		switch {
		case isLive && isTest:
			panic("labelled both live and test: " + k.RID + "/" + k.Index)
		case isLive:
			live = append(live, e)
		case isTest:
			e.Test = true
			test = append(test, e)
		}
	}
	for name, list := range map[string][]entry{"live.json": live, "test.json": test, "bad-checksum.json": bad} {
		sort.Slice(list, func(i, j int) bool { return list[i].RID+list[i].Index < list[j].RID+list[j].Index })
		for i := 1; i < len(list); i++ {
			if list[i].RID == list[i-1].RID && list[i].Index == list[i-1].Index {
				panic("duplicate " + list[i].RID + "/" + list[i].Index + " in " + name)
			}
		}
		b, err := json.MarshalIndent(list, "", "  ")
		check(err)
		check(os.WriteFile(filepath.Join(os.Args[2], name), append(b, '\n'), 0o644))
		fmt.Println(name, len(list))
	}
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
