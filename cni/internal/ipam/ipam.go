// Package ipam is the plugin's node-local address store: the node's pod blocks, and one file per
// allocated address in a directory that outlives the plugin's processes (host-local style).
//
//	<dir>/lock           flock'ed (exclusive) around every read-modify-write of the store
//	<dir>/10.244.1.7     "containerID\nifname\nnamespace/name\n": who holds 10.244.1.7
//
// An address file is created with O_EXCL, so even a writer that skipped the lock could never hand out an
// address twice; the lock makes "the lowest free address" and "already held by this attachment"
// consistent under concurrent ADDs, DELs and GCs. Each block's first address (the node's health address
// lives there) and last (broadcast) are never handed out.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"
)

// Plugin-specific CNI error codes of the address store (100+ per the spec).
const (
	// CodeAddressInUse: the requested address is held by another attachment.
	CodeAddressInUse uint = 100
	// CodeNoFreeAddress: every address of the node's blocks is allocated.
	CodeNoFreeAddress uint = 101
)

const lockName = "lock"

// Owner is the attachment an address belongs to.
type Owner struct {
	ContainerID string
	IfName      string
	// Pod is "namespace/name" (empty when the runtime did not say).
	Pod string
}

func (o Owner) same(other Owner) bool {
	return o.ContainerID == other.ContainerID && o.IfName == other.IfName
}

func (o Owner) String() string {
	s := fmt.Sprintf("container %s, interface %s", o.ContainerID, o.IfName)
	if o.Pod != "" {
		s += ", pod " + o.Pod
	}
	return s
}

// Allocation is one address and who holds it.
type Allocation struct {
	Addr  netip.Addr
	Owner Owner
}

// Store is the address store of one node (one directory).
type Store struct {
	dir    string
	blocks []netip.Prefix
}

// New describes the store of dir; it does no I/O.
func New(dir string, blocks []netip.Prefix) *Store {
	return &Store{dir: dir, blocks: blocks}
}

// Init creates the directory when missing.
func (s *Store) Init() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("switchyard-cni: cannot create the IPAM directory %s: %v", s.dir, err), "")
	}
	return nil
}

// Exists reports whether the directory exists (nothing was ever allocated when it does not).
func (s *Store) Exists() bool {
	_, err := os.Stat(s.dir)
	return err == nil
}

// Lock takes the store's exclusive lock, waiting at most timeout; the returned function releases it.
// Polls with a short backoff rather than blocking, so that a timed-out wait leaves nothing behind.
func (s *Store) Lock(timeout time.Duration) (func(), error) {
	path := filepath.Join(s.dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("switchyard-cni: cannot open the IPAM lock %s: %v", path, err), "")
	}
	deadline := time.Now().Add(timeout)
	backoff := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			_ = f.Close()
			return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("switchyard-cni: cannot lock %s: %v", path, err), "")
		}
		if time.Now().After(deadline) {
			_ = f.Close()
			return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("switchyard-cni: the IPAM lock %s is still held after %s", path, timeout), "")
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 10*time.Millisecond)
	}
}

func (s *Store) path(addr netip.Addr) string { return filepath.Join(s.dir, addr.String()) }

// List returns every allocation in the store, ordered by address. Call it under the lock.
func (s *Store) List() ([]Allocation, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("switchyard-cni: cannot read the IPAM directory %s: %v", s.dir, err), "")
	}
	var out []Allocation
	for _, e := range entries {
		addr, err := netip.ParseAddr(e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue // the lock, or a file that is not ours
		}
		owner, err := s.readOwner(addr)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, Allocation{Addr: addr, Owner: owner})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

func (s *Store) readOwner(addr netip.Addr) (Owner, error) {
	data, err := os.ReadFile(s.path(addr))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Owner{}, err
		}
		return Owner{}, types.NewError(types.ErrIOFailure, fmt.Sprintf("switchyard-cni: cannot read the allocation of %s: %v", addr, err), "")
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var o Owner
	if len(lines) > 0 {
		o.ContainerID = strings.TrimSpace(lines[0])
	}
	if len(lines) > 1 {
		o.IfName = strings.TrimSpace(lines[1])
	}
	if len(lines) > 2 {
		o.Pod = strings.TrimSpace(lines[2])
	}
	return o, nil
}

// OwnerOf returns who holds addr, and false when nobody does. Call it under the lock.
func (s *Store) OwnerOf(addr netip.Addr) (Owner, bool, error) {
	o, err := s.readOwner(addr)
	if errors.Is(err, os.ErrNotExist) {
		return Owner{}, false, nil
	}
	return o, err == nil, err
}

// Find returns the allocations held by containerID+ifname. Call it under the lock.
func (s *Store) Find(containerID, ifname string) ([]Allocation, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	want := Owner{ContainerID: containerID, IfName: ifname}
	var out []Allocation
	for _, a := range all {
		if a.Owner.same(want) {
			out = append(out, a)
		}
	}
	return out, nil
}

// BlockOf returns the block holding addr.
func (s *Store) BlockOf(addr netip.Addr) (netip.Prefix, bool) {
	for _, b := range s.blocks {
		if b.Contains(addr) {
			return b, true
		}
	}
	return netip.Prefix{}, false
}

func (s *Store) blockList() string {
	parts := make([]string, len(s.blocks))
	for i, b := range s.blocks {
		parts[i] = b.String()
	}
	return strings.Join(parts, ", ")
}

// Usable reports whether addr may be handed out: inside a block, neither its first address nor its last.
// The error says why not (CNI code 7: the request does not fit this node's configuration).
func (s *Store) Usable(addr netip.Addr) error {
	b, ok := s.BlockOf(addr)
	if !ok {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("switchyard-cni: requested address %s is not in this node's blocks (%s)", addr, s.blockList()), "")
	}
	if addr == b.Addr() {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("switchyard-cni: requested address %s is the first address of block %s, reserved for the node's health address", addr, b), "")
	}
	if addr == lastAddr(b) {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("switchyard-cni: requested address %s is the broadcast address of block %s", addr, b), "")
	}
	return nil
}

// Allocate gives owner an address: static when it is valid (see Usable) and free or already held by the
// same attachment; otherwise the lowest free address of the blocks in order, or the address the
// attachment already holds. fresh says whether a new allocation was made (false: it was held already).
// Call it under the lock.
func (s *Store) Allocate(owner Owner, static netip.Addr) (addr netip.Addr, fresh bool, err error) {
	if static.IsValid() {
		if err := s.Usable(static); err != nil {
			return netip.Addr{}, false, err
		}
		held, err := s.readOwner(static)
		switch {
		case err == nil && held.same(owner):
			return static, false, nil
		case err == nil:
			return netip.Addr{}, false, types.NewError(CodeAddressInUse, fmt.Sprintf("switchyard-cni: requested address %s is in use (%s)", static, held), "")
		case !errors.Is(err, os.ErrNotExist):
			return netip.Addr{}, false, err
		}
		if err := s.create(static, owner); err != nil {
			if errors.Is(err, os.ErrExist) {
				return netip.Addr{}, false, types.NewError(CodeAddressInUse, fmt.Sprintf("switchyard-cni: requested address %s is in use", static), "")
			}
			return netip.Addr{}, false, err
		}
		return static, true, nil
	}

	all, err := s.List()
	if err != nil {
		return netip.Addr{}, false, err
	}
	used := make(map[netip.Addr]bool, len(all))
	inBlocks := 0
	for _, a := range all {
		if a.Owner.same(owner) {
			if _, ok := s.BlockOf(a.Addr); ok {
				return a.Addr, false, nil
			}
		}
		used[a.Addr] = true
		if _, ok := s.BlockOf(a.Addr); ok {
			inBlocks++
		}
	}
	for _, b := range s.blocks {
		last := lastAddr(b)
		for a := b.Addr().Next(); a.IsValid() && a.Less(last); a = a.Next() {
			if used[a] {
				continue
			}
			err := s.create(a, owner)
			if err == nil {
				return a, true, nil
			}
			if !errors.Is(err, os.ErrExist) {
				return netip.Addr{}, false, err
			}
		}
	}
	return netip.Addr{}, false, types.NewError(CodeNoFreeAddress, fmt.Sprintf("switchyard-cni: no free address in %s (%d in use)", s.blockList(), inBlocks), "")
}

func (s *Store) create(addr netip.Addr, owner Owner) error {
	f, err := os.OpenFile(s.path(addr), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return err
		}
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("switchyard-cni: cannot record the allocation of %s: %v", addr, err), "")
	}
	_, werr := fmt.Fprintf(f, "%s\n%s\n%s\n", owner.ContainerID, owner.IfName, owner.Pod)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(s.path(addr))
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("switchyard-cni: cannot record the allocation of %s: %v", addr, errors.Join(werr, cerr)), "")
	}
	return nil
}

// Free removes the allocation of addr (a no-op when there is none). Call it under the lock.
func (s *Store) Free(addr netip.Addr) error {
	if err := os.Remove(s.path(addr)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("switchyard-cni: cannot free %s: %v", addr, err), "")
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
