package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

func code(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

func newStore(t *testing.T, blocks ...string) *Store {
	t.Helper()
	s := New(filepath.Join(t.TempDir(), "ipam"), prefixes(blocks...))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	return s
}

func alloc(t *testing.T, s *Store, id string, static string) (netip.Addr, bool, error) {
	t.Helper()
	unlock, err := s.Lock(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	var want netip.Addr
	if static != "" {
		want = netip.MustParseAddr(static)
	}
	return s.Allocate(Owner{ContainerID: id, IfName: "eth0", Pod: "ns/" + id}, want)
}

func TestLowestFreeSkippingNetworkAndBroadcast(t *testing.T) {
	s := newStore(t, "10.244.1.0/30", "10.244.2.0/29")
	var got []string
	for i := range 8 {
		a, fresh, err := alloc(t, s, fmt.Sprintf("c%d", i), "")
		if err != nil || !fresh {
			t.Fatalf("allocation %d: %v %v", i, a, err)
		}
		got = append(got, a.String())
	}
	want := "10.244.1.1 10.244.1.2 10.244.2.1 10.244.2.2 10.244.2.3 10.244.2.4 10.244.2.5 10.244.2.6"
	if strings.Join(got, " ") != want {
		t.Errorf("got %s, want %s", strings.Join(got, " "), want)
	}
	_, _, err := alloc(t, s, "c8", "")
	if code(err) != CodeNoFreeAddress || !strings.Contains(err.Error(), "no free address in 10.244.1.0/30, 10.244.2.0/29 (8 in use)") {
		t.Errorf("exhausted: %v (code %d)", err, code(err))
	}

	// A freed address is the lowest free one again; the owner's file says who held it.
	data, _ := os.ReadFile(filepath.Join(s.dir, "10.244.2.2"))
	if string(data) != "c3\neth0\nns/c3\n" {
		t.Errorf("allocation file: %q", data)
	}
	unlock, _ := s.Lock(time.Second)
	if err := s.Free(netip.MustParseAddr("10.244.2.2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Free(netip.MustParseAddr("10.244.2.2")); err != nil {
		t.Fatalf("a second free is a no-op: %v", err)
	}
	unlock()
	if a, _, err := alloc(t, s, "c9", ""); err != nil || a.String() != "10.244.2.2" {
		t.Errorf("after free: %v %v", a, err)
	}
}

func TestSameAttachmentKeepsItsAddress(t *testing.T) {
	s := newStore(t, "10.244.1.0/26")
	a, fresh, _ := alloc(t, s, "c1", "")
	b, fresh2, err := alloc(t, s, "c1", "")
	if err != nil || a != b || !fresh || fresh2 {
		t.Errorf("re-allocation for the same attachment: %v/%v then %v/%v (%v)", a, fresh, b, fresh2, err)
	}
	st, fresh3, err := alloc(t, s, "c1", a.String())
	if err != nil || st != a || fresh3 {
		t.Errorf("static request of the address it holds: %v %v %v", st, fresh3, err)
	}
}

func TestStaticRequests(t *testing.T) {
	s := newStore(t, "10.244.1.0/26")
	a, fresh, err := alloc(t, s, "c1", "10.244.1.7")
	if err != nil || a.String() != "10.244.1.7" || !fresh {
		t.Fatalf("static: %v %v", a, err)
	}
	// The dynamic allocation does not take the static one.
	for i := range 7 {
		a, _, _ := alloc(t, s, fmt.Sprintf("d%d", i), "")
		if a.String() == "10.244.1.7" {
			t.Errorf("dynamic allocation %d took the static address", i)
		}
	}
	for _, c := range []struct {
		addr string
		code uint
		msg  string
	}{
		{"10.244.1.7", CodeAddressInUse, "requested address 10.244.1.7 is in use (container c1, interface eth0, pod ns/c1)"},
		{"10.9.9.9", types.ErrInvalidNetworkConfig, "requested address 10.9.9.9 is not in this node's blocks (10.244.1.0/26)"},
		{"10.244.1.0", types.ErrInvalidNetworkConfig, "first address of block 10.244.1.0/26"},
		{"10.244.1.63", types.ErrInvalidNetworkConfig, "broadcast address of block 10.244.1.0/26"},
	} {
		_, _, err := alloc(t, s, "other", c.addr)
		if code(err) != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("static %s: %v (code %d), want %q (code %d)", c.addr, err, code(err), c.msg, c.code)
		}
	}
	if all, _ := s.List(); len(all) != 8 {
		t.Errorf("refusals allocated something: %v", all)
	}
}

func TestFindAndList(t *testing.T) {
	s := newStore(t, "10.244.1.0/26")
	alloc(t, s, "c1", "")
	alloc(t, s, "c2", "")
	if err := os.WriteFile(filepath.Join(s.dir, "not-an-address"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	found, err := s.Find("c2", "eth0")
	if err != nil || len(found) != 1 || found[0].Addr.String() != "10.244.1.2" || found[0].Owner.Pod != "ns/c2" {
		t.Errorf("Find: %+v %v", found, err)
	}
	if found, _ := s.Find("c2", "eth1"); len(found) != 0 {
		t.Errorf("Find with another ifname: %+v", found)
	}
	if all, _ := s.List(); len(all) != 2 {
		t.Errorf("List: %+v", all)
	}
}

// Concurrent allocations through separate stores (separate lock file descriptors, as separate plugin
// processes have) never hand out one address twice.
func TestConcurrentAllocationsAreDistinct(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ipam")
	blocks := prefixes("10.244.1.0/26")
	const n = 40
	var wg sync.WaitGroup
	results := make([]netip.Addr, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := New(dir, blocks)
			if errs[i] = s.Init(); errs[i] != nil {
				return
			}
			unlock, err := s.Lock(10 * time.Second)
			if err != nil {
				errs[i] = err
				return
			}
			defer unlock()
			results[i], _, errs[i] = s.Allocate(Owner{ContainerID: fmt.Sprintf("c%d", i), IfName: "eth0"}, netip.Addr{})
		}()
	}
	wg.Wait()
	seen := map[netip.Addr]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("allocation %d: %v", i, errs[i])
		}
		if j, dup := seen[results[i]]; dup {
			t.Errorf("%s handed to c%d and c%d", results[i], j, i)
		}
		seen[results[i]] = i
	}
}

func TestLockTimesOutWithTryAgain(t *testing.T) {
	s := newStore(t, "10.244.1.0/26")
	unlock, err := s.Lock(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	other := New(s.dir, s.blocks)
	_, err = other.Lock(50 * time.Millisecond)
	if code(err) != types.ErrTryAgainLater || !strings.Contains(err.Error(), "still held") {
		t.Errorf("second lock: %v", err)
	}
}
