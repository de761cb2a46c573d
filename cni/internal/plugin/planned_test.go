package plugin

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPlannedAddress(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"x/a\n10.0.0.10\n": "10.0.0.10",
		"x/a\n":            "",
		"x/a\nnot-an-ip\n": "",
		"x/a\nfd00::1\n":   "",
	}
	for content, want := range cases {
		marker := filepath.Join(dir, "m")
		if err := os.WriteFile(marker, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got := plannedAddress(marker)
		if (want == "" && got.IsValid()) || (want != "" && got.String() != want) {
			t.Errorf("marker %q: got %v, want %q", content, got, want)
		}
	}
	if plannedAddress(filepath.Join(dir, "missing")).IsValid() {
		t.Error("a missing marker names no address")
	}
}
