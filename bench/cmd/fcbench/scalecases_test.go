package main

import (
	"slices"
	"testing"
)

func TestParseCounts(t *testing.T) {
	cases := []struct {
		in   string
		want []int
	}{
		{"200", []int{200}},
		{"50,200", []int{50, 200}},
		{" 100 , 1000 ", []int{100, 1000}},
		{"", nil},
		{"0", nil},
		{"50,-1", nil},
		{"50,x", nil},
		{"50,", nil},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got := parseCounts(c.in)
			if !slices.Equal(got, c.want) {
				t.Fatalf("parseCounts(%q) = %v, want %v", c.in, got, c.want)
			}
			if got != nil && parseCounts(joinInts(got)) == nil {
				t.Fatalf("joinInts(%v) does not parse back", got)
			}
		})
	}
}
