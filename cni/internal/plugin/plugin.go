// Package plugin carries out the CNI verbs of switchyard-cni: Calico-style pod wiring (a veth named for
// the pod, the pod's /32 behind it, proxy ARP answering for a link-local gateway), addresses from the
// node's blocks (package ipam), and the hand-off with the node agent (its "ready" and endpoint markers).
//
// "Host" is the network namespace the plugin was started in: a node's namespace in the lab (`ip netns
// exec <node>`), the root namespace under a kubelet. The plugin never moves a thread between namespaces:
// it talks to the pod's namespace through a netlink socket opened there.
package plugin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"switchyard.dev/cni/internal/config"
	"switchyard.dev/cni/internal/ipam"
	"switchyard.dev/cni/internal/names"
)

// Versions are the spec versions the plugin speaks (results of older ones through the library's conversion).
var Versions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// Plugin-specific CNI error codes besides the address store's (100, 101).
const (
	// CodeInterfaceExists: ADD found CNI_IFNAME already in the pod's namespace.
	CodeInterfaceExists uint = 102
	// CodeCheckFailed: CHECK found the attachment not as ADD left it.
	CodeCheckFailed uint = 103
)

// PodGateway is the link-local next hop every pod routes through; the host side answers ARP for it
// (proxy_arp), so no address is ever configured for it.
var PodGateway = netip.MustParseAddr("169.254.1.1")

const (
	lockTimeout = 30 * time.Second
	aliasPrefix = "switchyard-cni"
)

// alias marks a host veth with the attachment it belongs to (IFLA_IFALIAS), so DEL and GC of an older
// attachment of the same pod never delete the veth of a newer one (the name is the pod's, not the sandbox's).
func alias(containerID, ifname string) string {
	return fmt.Sprintf("%s %s %s", aliasPrefix, containerID, ifname)
}

func cniErr(code uint, format string, args ...any) *types.Error {
	return types.NewError(code, fmt.Sprintf("switchyard-cni: "+format, args...), "")
}

func internal(format string, args ...any) *types.Error {
	return cniErr(types.ErrInternal, format, args...)
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "switchyard-cni: "+format+"\n", args...)
}

// podHandle opens a netlink socket inside the pod's namespace.
func podHandle(netnsPath string) (ns.NetNS, netlinksafe.Handle, error) {
	if netnsPath == "" {
		return nil, netlinksafe.Handle{}, cniErr(types.ErrInvalidEnvironmentVariables, "CNI_NETNS is empty")
	}
	podNS, err := ns.GetNS(netnsPath)
	if err != nil {
		return nil, netlinksafe.Handle{}, cniErr(types.ErrInvalidEnvironmentVariables, "CNI_NETNS %s is not a network namespace: %v", netnsPath, err)
	}
	// Only NETLINK_ROUTE: with no family given, netlink opens every family it knows (XFRM among them),
	// and a kernel without one refuses the whole handle ("protocol not supported").
	h, err := netlinksafe.NewHandleAt(netns.NsHandle(podNS.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		_ = podNS.Close()
		return nil, netlinksafe.Handle{}, internal("cannot open netlink in %s: %v", netnsPath, err)
	}
	return podNS, h, nil
}

func hostHandle() (netlinksafe.Handle, error) {
	h, err := netlinksafe.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return netlinksafe.Handle{}, internal("cannot open netlink: %v", err)
	}
	return h, nil
}

// writeSysctl writes /proc/sys directly: the plugin's own namespace is the host's.
func writeSysctl(key, value string) error {
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

func readSysctl(key string) (string, error) {
	data, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")))
	return strings.TrimSpace(string(data)), err
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(32, 32)}
}

// ---- ADD ----

// Add wires the pod. A failure undoes what this ADD did: the veth pair (and with it the host route) is
// deleted and a fresh allocation freed.
func Add(args *skel.CmdArgs) error {
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	pod, err := config.PodFromArgs(args.Args, conf.RuntimeConfig.IPs, true)
	if err != nil {
		return err
	}
	hostName := names.HostVeth(pod.Namespace, pod.Name)
	store := ipam.New(conf.DataDir, conf.ParsedBlocks)
	if pod.Static.IsValid() {
		if err := store.Usable(pod.Static); err != nil {
			return err
		}
	}

	// The agent programs the pod's policy once the pod is in the node's plan; nothing is created before.
	// Its marker may name the address the controller planned for the pod (see plannedAddress).
	var planned netip.Addr
	if conf.PolicyWaitSeconds > 0 {
		marker := filepath.Join(conf.AgentStateDir, "endpoints", hostName)
		wait := time.Duration(conf.PolicyWaitSeconds * float64(time.Second))
		ok, err := WaitForFile(marker, wait)
		if err != nil {
			return internal("waiting for %s: %v", marker, err)
		}
		if !ok {
			return cniErr(types.ErrTryAgainLater, "the Switchyard agent has not programmed pod %s/%s (interface %s) within %s (%s is missing); nothing was created",
				pod.Namespace, pod.Name, hostName, wait, marker)
		}
		planned = plannedAddress(marker)
	}

	podNS, podH, err := podHandle(args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	defer podH.Close()
	if _, err := podH.LinkByName(args.IfName); err == nil {
		return cniErr(CodeInterfaceExists, "interface %s already exists in %s", args.IfName, args.Netns)
	} else if !isNotFound(err) {
		return internal("looking up %s in %s: %v", args.IfName, args.Netns, err)
	}
	hostH, err := hostHandle()
	if err != nil {
		return err
	}
	defer hostH.Close()

	if err := store.Init(); err != nil {
		return err
	}
	owner := ipam.Owner{ContainerID: args.ContainerID, IfName: args.IfName, Pod: pod.Namespace + "/" + pod.Name}
	unlock, err := store.Lock(lockTimeout)
	if err != nil {
		return err
	}
	addr, fresh, err := store.Allocate(owner, pod.Static)
	if err == nil && fresh && !pod.Static.IsValid() && planned.IsValid() && addr != planned && store.Usable(planned) == nil {
		// The controller's planned address, when it is usable here and free: the pod then gets the address
		// its policy and routes already name (an annotation's request, which a kubelet does not pass on).
		// While an earlier sandbox of the same pod still holds it (a pod deleted and created again under
		// its name, whose old sandbox the kubelet tears down asynchronously), wait for its DEL, bounded.
		// Otherwise the plugin's own choice stands, and the controller adopts it from the pod's status.
		deadline := time.Now().Add(plannedAddressWait)
		for {
			if p, pfresh, perr := store.Allocate(owner, planned); perr == nil && pfresh {
				_ = store.Free(addr)
				addr = p
				break
			}
			held, ok, herr := store.OwnerOf(planned)
			if herr != nil || !ok || held.Pod != owner.Pod || time.Now().After(deadline) {
				break
			}
			unlock()
			time.Sleep(100 * time.Millisecond)
			if unlock, err = store.Lock(lockTimeout); err != nil {
				return err
			}
		}
	}
	unlock()
	if err != nil {
		return err
	}

	result, created, err := wire(conf, args, podNS, hostH, podH, hostName, addr)
	if err != nil {
		if created {
			if link, lerr := hostH.LinkByName(hostName); lerr == nil && link.Attrs().Alias == alias(args.ContainerID, args.IfName) {
				if derr := hostH.LinkDel(link); derr != nil && !isNotFound(derr) {
					logf("undo: cannot delete %s: %v", hostName, derr)
				}
			}
		}
		if fresh {
			if unlock, lerr := store.Lock(lockTimeout); lerr == nil {
				if ferr := store.Free(addr); ferr != nil {
					logf("undo: %v", ferr)
				}
				unlock()
			} else {
				logf("undo: cannot free %s: %v", addr, lerr)
			}
		}
		return err
	}
	return types.PrintResult(result, conf.CNIVersion)
}

// wire creates the veth pair and configures both ends; created says whether the pair exists (for undo).
func wire(conf *config.NetConf, args *skel.CmdArgs, podNS ns.NetNS, hostH, podH netlinksafe.Handle, hostName string, addr netip.Addr) (*current.Result, bool, error) {
	// A veth of this name is an earlier sandbox's of the same pod (a pod has one sandbox at a time).
	if stale, err := hostH.LinkByName(hostName); err == nil {
		logf("deleting stale %s (%q) before wiring container %s", hostName, stale.Attrs().Alias, args.ContainerID)
		if err := hostH.LinkDel(stale); err != nil && !isNotFound(err) {
			return nil, false, internal("cannot delete the stale host veth %s: %v", hostName, err)
		}
	}

	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostName
	attrs.MTU = conf.MTU
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: args.IfName, PeerNamespace: netlink.NsFd(int(podNS.Fd())), PeerMTU: uint32(conf.MTU)}
	if err := hostH.LinkAdd(veth); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, false, cniErr(CodeInterfaceExists, "cannot create the veth pair %s/%s: a device of one of these names exists: %v", hostName, args.IfName, err)
		}
		return nil, false, internal("cannot create the veth pair %s (host) / %s (pod): %v", hostName, args.IfName, err)
	}
	hostLink, err := hostH.LinkByName(hostName)
	if err != nil {
		// Created but not found: the pair cannot be ours to delete by name with certainty; report it.
		return nil, true, internal("created %s but cannot find it: %v", hostName, err)
	}
	if err := hostH.LinkSetAlias(hostLink, alias(args.ContainerID, args.IfName)); err != nil {
		_ = hostH.LinkDel(hostLink)
		return nil, false, internal("cannot mark %s with its attachment: %v", hostName, err)
	}
	fail := func(format string, a ...any) (*current.Result, bool, error) {
		return nil, true, internal(format, a...)
	}

	// Host side: proxy ARP answers the pod's ARP for 169.254.1.1 at once (proxy_delay 0), then up.
	if err := writeSysctl("net.ipv4.conf."+hostName+".proxy_arp", "1"); err != nil {
		return fail("%v", err)
	}
	if err := writeSysctl("net.ipv4.neigh."+hostName+".proxy_delay", "0"); err != nil {
		return fail("%v", err)
	}
	if err := hostH.LinkSetUp(hostLink); err != nil {
		return fail("cannot set %s up: %v", hostName, err)
	}

	// Pod side: lo up, the /32, up, the gateway's link route, the default route through it.
	podLink, err := podH.LinkByName(args.IfName)
	if err != nil {
		return fail("cannot find %s in %s: %v", args.IfName, args.Netns, err)
	}
	if lo, err := podH.LinkByName("lo"); err == nil {
		if err := podH.LinkSetUp(lo); err != nil {
			return fail("cannot set lo up in %s: %v", args.Netns, err)
		}
	}
	if err := podH.AddrAdd(podLink, &netlink.Addr{IPNet: hostNet(addr)}); err != nil {
		return fail("cannot add %s/32 to %s: %v", addr, args.IfName, err)
	}
	if err := podH.LinkSetUp(podLink); err != nil {
		return fail("cannot set %s up in %s: %v", args.IfName, args.Netns, err)
	}
	gw := net.IP(PodGateway.AsSlice())
	if err := podH.RouteAdd(&netlink.Route{LinkIndex: podLink.Attrs().Index, Dst: hostNet(PodGateway), Scope: netlink.SCOPE_LINK}); err != nil {
		return fail("cannot add the route %s dev %s in the pod: %v", PodGateway, args.IfName, err)
	}
	if err := podH.RouteAdd(&netlink.Route{LinkIndex: podLink.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: gw}); err != nil {
		return fail("cannot add the default route via %s in the pod: %v", PodGateway, err)
	}

	// Host route to the pod.
	if err := hostH.RouteAdd(&netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: hostNet(addr), Scope: netlink.SCOPE_LINK}); err != nil {
		return fail("cannot add the host route %s/32 dev %s: %v", addr, hostName, err)
	}

	// MACs as they are now (the kernel assigns them at creation).
	if l, err := hostH.LinkByName(hostName); err == nil {
		hostLink = l
	}
	if l, err := podH.LinkByName(args.IfName); err == nil {
		podLink = l
	}
	linkScope := int(netlink.SCOPE_LINK)
	result := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: hostName, Mac: hostLink.Attrs().HardwareAddr.String(), Mtu: conf.MTU},
			{Name: args.IfName, Mac: podLink.Attrs().HardwareAddr.String(), Mtu: conf.MTU, Sandbox: args.Netns},
		},
		IPs: []*current.IPConfig{{Interface: current.Int(1), Address: *hostNet(addr), Gateway: gw}},
		Routes: []*types.Route{
			{Dst: *hostNet(PodGateway), Scope: &linkScope},
			{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw},
		},
	}
	return result, true, nil
}

// ---- DEL ----

// Del frees the attachment's address and deletes its host veth (which takes the pod end and the host
// route with it). Idempotent: nothing allocated, the veth gone, the namespace gone are all fine.
func Del(args *skel.CmdArgs) error {
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	store := ipam.New(conf.DataDir, conf.ParsedBlocks)
	hostH, err := hostHandle()
	if err != nil {
		return err
	}
	defer hostH.Close()

	vethNames := map[string]bool{}
	if pod, err := config.PodFromArgs(args.Args, nil, false); err == nil && pod.Namespace != "" && pod.Name != "" {
		vethNames[names.HostVeth(pod.Namespace, pod.Name)] = true
	}
	if !store.Exists() {
		return deleteVeths(hostH, vethNames, args.ContainerID, args.IfName)
	}
	allocs, err := findLocked(store, args.ContainerID, args.IfName)
	if err != nil {
		return err
	}
	for _, a := range allocs {
		if n := vethOfPod(a.Owner.Pod); n != "" {
			vethNames[n] = true
		}
	}
	// The veth goes first, outside the lock (the kernel takes tens of milliseconds to delete one, and
	// other pods' ADDs and DELs should not queue behind it); the address is freed only once nothing
	// routes to it any more.
	if err := deleteVeths(hostH, vethNames, args.ContainerID, args.IfName); err != nil {
		return err
	}
	unlock, err := store.Lock(lockTimeout)
	if err != nil {
		return err
	}
	defer unlock()
	allocs, err = store.Find(args.ContainerID, args.IfName)
	if err != nil {
		return err
	}
	for _, a := range allocs {
		if err := store.Free(a.Addr); err != nil {
			return err
		}
	}
	return nil
}

func findLocked(store *ipam.Store, containerID, ifname string) ([]ipam.Allocation, error) {
	unlock, err := store.Lock(lockTimeout)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return store.Find(containerID, ifname)
}

func vethOfPod(pod string) string {
	namespace, name, ok := strings.Cut(pod, "/")
	if !ok || namespace == "" || name == "" {
		return ""
	}
	return names.HostVeth(namespace, name)
}

// deleteVeths deletes each named host veth that belongs to containerID+ifname (by its alias; one without
// an alias too). A veth another attachment of the same pod owns stays.
func deleteVeths(hostH netlinksafe.Handle, vethNames map[string]bool, containerID, ifname string) error {
	for name := range vethNames {
		link, err := hostH.LinkByName(name)
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return internal("looking up %s: %v", name, err)
		}
		if a := link.Attrs().Alias; a != "" && a != alias(containerID, ifname) {
			logf("keeping %s: it belongs to another attachment (%q)", name, a)
			continue
		}
		if err := hostH.LinkDel(link); err != nil && !isNotFound(err) {
			return internal("cannot delete %s: %v", name, err)
		}
	}
	return nil
}

// ---- GC ----

// GC frees every allocation whose attachment is not in cni.dev/valid-attachments and deletes its host
// veth when that is still there (and still that attachment's).
func GC(args *skel.CmdArgs) error {
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	store := ipam.New(conf.DataDir, conf.ParsedBlocks)
	if !store.Exists() {
		return nil
	}
	valid := map[types.GCAttachment]bool{}
	for _, a := range conf.ValidAttachments {
		valid[a] = true
	}
	hostH, err := hostHandle()
	if err != nil {
		return err
	}
	defer hostH.Close()
	unlock, err := store.Lock(lockTimeout)
	if err != nil {
		return err
	}
	defer unlock()
	all, err := store.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range all {
		if valid[types.GCAttachment{ContainerID: a.Owner.ContainerID, IfName: a.Owner.IfName}] {
			continue
		}
		if n := vethOfPod(a.Owner.Pod); n != "" {
			if err := deleteVeths(hostH, map[string]bool{n: true}, a.Owner.ContainerID, a.Owner.IfName); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := store.Free(a.Addr); err != nil {
			errs = append(errs, err)
			continue
		}
		logf("gc: freed %s (%s)", a.Addr, a.Owner)
	}
	if len(errs) > 0 {
		return internal("gc: %v", errors.Join(errs...))
	}
	return nil
}

// ---- STATUS ----

// Status is ready once the agent has applied its first complete plan (it writes <agentStateDir>/ready).
func Status(args *skel.CmdArgs) error {
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	ready := filepath.Join(conf.AgentStateDir, "ready")
	if _, err := os.Stat(ready); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return cniErr(types.ErrPluginNotAvailable, "the Switchyard agent on this node has not applied its first plan yet (%s is missing)", ready)
		}
		return cniErr(types.ErrPluginNotAvailable, "cannot tell whether the Switchyard agent is ready: %v", err)
	}
	return nil
}

// plannedAddressWait bounds how long ADD waits for an earlier sandbox of the same pod to release the
// pod's planned address.
const plannedAddressWait = 15 * time.Second

// plannedAddress reads the address the agent's marker names for the pod (its second line), if any.
func plannedAddress(marker string) netip.Addr {
	data, err := os.ReadFile(marker)
	if err != nil {
		return netip.Addr{}
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 {
		return netip.Addr{}
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(lines[1]))
	if err != nil || !addr.Is4() {
		return netip.Addr{}
	}
	return addr
}
