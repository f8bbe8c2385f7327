package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
)

// applyConfigFile reads a JSON object whose keys are the command's flag
// names ("listen", "data", "console-users", …) and sets every flag that
// was not given on the command line: flags override the file. Values
// are strings, numbers or booleans, written as the flag would take them
// ("grace": "3h"). Unknown keys, duplicate keys and other types are
// refused, so a typo never silently falls back to a default.
func applyConfigFile(ctx context.Context, cmd *cobra.Command, path string) error {
	b, err := readInput(ctx, "--config", path, maxJSONInput)
	if err != nil {
		return err
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if err := checkJSONKeys(b); err != nil {
		return usageErr("--config %s: %w", path, err)
	}
	var file map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&file); err != nil {
		return usageErr("--config %s: %w", path, err)
	}
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := setFromConfig(cmd, k, file[k]); err != nil {
			return usageErr("--config %s: %w", path, err)
		}
	}
	return nil
}

func setFromConfig(cmd *cobra.Command, name string, v any) error {
	fs := cmd.Flags()
	f := fs.Lookup(name)
	if f == nil || name == "config" || name == "help" {
		return fmt.Errorf("unknown setting %q (settings are the flags' names: %s --help)", name, cmd.CommandPath())
	}
	if f.Changed {
		return nil // the command line wins
	}
	if list, ok := v.([]any); ok {
		return setListFromConfig(cmd, name, list)
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case bool:
		s = strconv.FormatBool(v)
	case json.Number:
		s = v.String()
	default:
		return fmt.Errorf("%q: want a string, number or boolean (or a list of strings for a repeatable flag)", name)
	}
	if err := fs.Set(name, s); err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	return nil
}

// setListFromConfig gives a repeatable flag (--qr-issuer A --qr-issuer B)
// each string of a JSON list, in order.
func setListFromConfig(cmd *cobra.Command, name string, list []any) error {
	f := cmd.Flags().Lookup(name)
	if t := f.Value.Type(); t != "stringArray" && t != "stringSlice" {
		return fmt.Errorf("%q: a list, but --%s is given once", name, name)
	}
	for _, v := range list {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%q: want a list of strings", name)
		}
		if err := cmd.Flags().Set(name, s); err != nil {
			return fmt.Errorf("%q: %w", name, err)
		}
	}
	return nil
}
