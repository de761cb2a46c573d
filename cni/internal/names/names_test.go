package names

import "testing"

// Vectors computed independently (sha256sum of "<namespace>/<name>"); the TypeScript side checks the same
// derivation through the binary's --interface-name mode (test/unit/cni-go.test.ts).
func TestHostVeth(t *testing.T) {
	cases := []struct{ namespace, name, want string }{
		{"default", "web-0", "sy53842afe623a"},
		{"kube-system", "coredns-7db6d8ff4d-x2x9q", "sye3b2394991fc"},
		{"a", "b", "syc14cddc033f6"},
		{"sycni", "p1", "sy80e5270ea21f"},
	}
	for _, c := range cases {
		got := HostVeth(c.namespace, c.name)
		if got != c.want {
			t.Errorf("HostVeth(%q, %q) = %q, want %q", c.namespace, c.name, got, c.want)
		}
		if len(got) != 14 {
			t.Errorf("HostVeth(%q, %q) = %q has %d characters, want 14", c.namespace, c.name, got, len(got))
		}
	}
}
