package plugin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"

	"switchyard.dev/cni/internal/config"
	"switchyard.dev/cni/internal/ipam"
	"switchyard.dev/cni/internal/names"
)

// Check verifies that the attachment is as ADD left it: the pod's interface with its /32, the two routes
// and the MTU; the host veth (the pod interface's peer, marked with this attachment) with its MTU, its
// route to the pod and proxy ARP; the address still allocated to this attachment. Every mismatch found is
// named in one error.
func Check(args *skel.CmdArgs) error {
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return err
	}
	if conf.RawPrevResult == nil {
		return cniErr(types.ErrInvalidNetworkConfig, "CHECK needs prevResult (the result of ADD)")
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return cniErr(types.ErrDecodingFailure, "cannot parse prevResult: %v", err)
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return cniErr(types.ErrDecodingFailure, "cannot convert prevResult: %v", err)
	}

	// The host veth: named for the pod (CNI_ARGS), or as the result names it.
	hostName := ""
	if pod, err := config.PodFromArgs(args.Args, nil, false); err == nil && pod.Namespace != "" && pod.Name != "" {
		hostName = names.HostVeth(pod.Namespace, pod.Name)
	}
	podIndex := -1
	for i, iface := range prev.Interfaces {
		switch {
		case iface.Sandbox != "" && iface.Name == args.IfName:
			podIndex = i
		case iface.Sandbox == "" && hostName == "" && strings.HasPrefix(iface.Name, "sy"):
			hostName = iface.Name
		}
	}
	if podIndex < 0 {
		return cniErr(CodeCheckFailed, "prevResult lists no interface %s inside a sandbox", args.IfName)
	}
	if hostName == "" {
		return cniErr(types.ErrInvalidEnvironmentVariables, "cannot tell the pod's host veth: CNI_ARGS lacks K8S_POD_NAMESPACE/K8S_POD_NAME and prevResult names none")
	}
	var addr netip.Addr
	for _, ipc := range prev.IPs {
		if ipc.Interface != nil && *ipc.Interface == podIndex && ipc.Address.IP.To4() != nil {
			addr, _ = netip.AddrFromSlice(ipc.Address.IP.To4())
		}
	}
	if !addr.IsValid() {
		return cniErr(CodeCheckFailed, "prevResult gives %s no IPv4 address", args.IfName)
	}

	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	// The address store.
	allocs, err := findLocked(ipam.New(conf.DataDir, conf.ParsedBlocks), args.ContainerID, args.IfName)
	if err != nil {
		return err
	}
	found := false
	for _, a := range allocs {
		found = found || a.Addr == addr
	}
	if !found {
		bad("%s is not allocated to container %s (%s) in %s", addr, args.ContainerID, args.IfName, conf.DataDir)
	}

	// The pod's side.
	podNS, podH, err := podHandle(args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	defer podH.Close()
	podLink, err := podH.LinkByName(args.IfName)
	if err != nil {
		return cniErr(CodeCheckFailed, "interface %s is missing in %s: %v", args.IfName, args.Netns, err)
	}
	checkLink(bad, "pod interface "+args.IfName, podLink, conf.MTU)
	if want := prev.Interfaces[podIndex].Mac; want != "" && !strings.EqualFold(want, podLink.Attrs().HardwareAddr.String()) {
		bad("pod interface %s has MAC %s, ADD reported %s", args.IfName, podLink.Attrs().HardwareAddr, want)
	}
	if !hasAddr(podH, podLink, addr) {
		bad("pod interface %s lacks %s/32", args.IfName, addr)
	}
	podRoutes, err := routesOf(podH, podLink)
	if err != nil {
		return internal("listing routes in %s: %v", args.Netns, err)
	}
	if !hasRoute(podRoutes, hostNet(PodGateway).String(), nil, netlink.SCOPE_LINK, true) {
		bad("the pod lacks the route %s dev %s scope link", PodGateway, args.IfName)
	}
	if !hasRoute(podRoutes, "0.0.0.0/0", net.IP(PodGateway.AsSlice()), 0, false) {
		bad("the pod lacks the route default via %s dev %s", PodGateway, args.IfName)
	}

	// The host's side.
	hostH, err := hostHandle()
	if err != nil {
		return err
	}
	defer hostH.Close()
	hostLink, err := hostH.LinkByName(hostName)
	if err != nil {
		bad("host veth %s is missing: %v", hostName, err)
	} else {
		checkLink(bad, "host veth "+hostName, hostLink, conf.MTU)
		if a := hostLink.Attrs().Alias; a != alias(args.ContainerID, args.IfName) {
			bad("host veth %s belongs to another attachment (%q)", hostName, a)
		}
		if podLink.Attrs().ParentIndex != hostLink.Attrs().Index {
			bad("host veth %s is not the peer of the pod's %s", hostName, args.IfName)
		}
		hostRoutes, err := routesOf(hostH, hostLink)
		if err != nil {
			return internal("listing host routes: %v", err)
		}
		if !hasRoute(hostRoutes, hostNet(addr).String(), nil, netlink.SCOPE_LINK, true) {
			bad("the host lacks the route %s/32 dev %s scope link", addr, hostName)
		}
		if v, err := readSysctl("net.ipv4.conf." + hostName + ".proxy_arp"); err != nil || v != "1" {
			bad("proxy_arp is not on for %s (%q %v)", hostName, v, err)
		}
	}
	if len(problems) > 0 {
		return cniErr(CodeCheckFailed, "attachment %s/%s of container %s: %s", hostName, args.IfName, args.ContainerID, strings.Join(problems, "; "))
	}
	return nil
}

func checkLink(bad func(string, ...any), what string, link netlink.Link, mtu int) {
	if link.Type() != "veth" {
		bad("%s is a %s, not a veth", what, link.Type())
	}
	if link.Attrs().MTU != mtu {
		bad("%s has MTU %d, the configuration says %d", what, link.Attrs().MTU, mtu)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		bad("%s is down", what)
	}
}

func hasAddr(h netlinksafe.Handle, link netlink.Link, addr netip.Addr) bool {
	var addrs []netlink.Addr
	err := retry(func() error {
		var err error
		addrs, err = h.AddrList(link, netlink.FAMILY_V4)
		return err
	})
	if err != nil {
		return false
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if a.IP.Equal(net.IP(addr.AsSlice())) && ones == 32 {
			return true
		}
	}
	return false
}

func routesOf(h netlinksafe.Handle, link netlink.Link) ([]netlink.Route, error) {
	var routes []netlink.Route
	err := retry(func() error {
		var err error
		routes, err = h.Handle.RouteList(link, netlink.FAMILY_V4)
		return err
	})
	return routes, err
}

// hasRoute: a route to dst (CIDR text) with gateway gw (nil: none) and, when checkScope, that scope.
func hasRoute(routes []netlink.Route, dst string, gw net.IP, scope netlink.Scope, checkScope bool) bool {
	for _, r := range routes {
		d := "0.0.0.0/0"
		if r.Dst != nil {
			d = r.Dst.String()
		}
		if d != dst || (gw == nil) != (r.Gw == nil) || (gw != nil && !gw.Equal(r.Gw)) {
			continue
		}
		if checkScope && r.Scope != scope {
			continue
		}
		return true
	}
	return false
}

// retry repeats a netlink dump that the kernel flagged as interrupted (a concurrent change).
func retry(f func() error) error {
	var err error
	for range 5 {
		if err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
	}
	return err
}
