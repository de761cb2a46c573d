// Package config parses what the runtime hands the plugin: the network configuration on stdin (one entry
// of the conflist the node agent writes, with the runtime's additions) and the pod's identity and
// requests in CNI_ARGS. Pure: bytes and strings in, values or CNI errors out.
package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

const (
	DefaultDataDir       = "/var/lib/switchyard/cni"
	DefaultAgentStateDir = "/run/switchyard"
	DefaultMTU           = 1500
	// MaxPolicyWaitSeconds bounds the wait for the agent: a runtime's own ADD timeout is minutes at most.
	MaxPolicyWaitSeconds = 300
)

// NetConf is the plugin's configuration.
type NetConf struct {
	types.PluginConf
	// MTU of both veth ends.
	MTU int `json:"mtu"`
	// Blocks are the node's IPv4 pod blocks, in the order addresses are handed out.
	Blocks []string `json:"blocks"`
	// DataDir holds the durable IPAM state: one file per allocated address.
	DataDir string `json:"dataDir"`
	// AgentStateDir holds the markers the node agent writes: "ready", "endpoints/<host veth>".
	AgentStateDir string `json:"agentStateDir"`
	// PolicyWaitSeconds: ADD waits up to this long for the agent's endpoint marker. 0 (or absent): no wait.
	PolicyWaitSeconds float64 `json:"policyWaitSeconds"`
	RuntimeConfig     struct {
		IPs []string `json:"ips,omitempty"`
	} `json:"runtimeConfig"`

	// ParsedBlocks are Blocks, parsed and checked.
	ParsedBlocks []netip.Prefix `json:"-"`
}

func invalid(format string, args ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(format, args...), "")
}

// Parse decodes and checks the configuration; defaults are filled in.
func Parse(stdin []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(stdin, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("switchyard-cni: the network configuration is not valid JSON: %v", err), "")
	}
	if conf.MTU == 0 {
		conf.MTU = DefaultMTU
	}
	if conf.MTU < 68 || conf.MTU > 65535 {
		return nil, invalid("switchyard-cni: mtu %d is out of range (68-65535)", conf.MTU)
	}
	if conf.DataDir == "" {
		conf.DataDir = DefaultDataDir
	}
	if conf.AgentStateDir == "" {
		conf.AgentStateDir = DefaultAgentStateDir
	}
	if conf.PolicyWaitSeconds < 0 || conf.PolicyWaitSeconds > MaxPolicyWaitSeconds {
		return nil, invalid("switchyard-cni: policyWaitSeconds %v is out of range (0-%d)", conf.PolicyWaitSeconds, MaxPolicyWaitSeconds)
	}
	blocks, err := ParseBlocks(conf.Blocks)
	if err != nil {
		return nil, err
	}
	conf.ParsedBlocks = blocks
	return conf, nil
}

// ParseBlocks checks the node's pod blocks: IPv4, written as their network address, each with at least
// one address besides its network address (the node's health address) and broadcast, no two overlapping.
func ParseBlocks(raw []string) ([]netip.Prefix, error) {
	if len(raw) == 0 {
		return nil, invalid("switchyard-cni: the configuration has no blocks: the node agent writes the node's pod blocks (e.g. \"blocks\": [\"10.244.1.0/26\"])")
	}
	out := make([]netip.Prefix, 0, len(raw))
	for _, s := range raw {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, invalid("switchyard-cni: block %q is not a CIDR: %v", s, err)
		}
		if !p.Addr().Is4() {
			return nil, invalid("switchyard-cni: block %q is not IPv4 (only IPv4 pod blocks are supported)", s)
		}
		if p.Masked() != p {
			return nil, invalid("switchyard-cni: block %q is not written as its network address (%s)", s, p.Masked())
		}
		if p.Bits() > 30 {
			return nil, invalid("switchyard-cni: block %q is too small: a block needs at least 4 addresses (network, one pod, broadcast)", s)
		}
		for _, q := range out {
			if q.Overlaps(p) {
				return nil, invalid("switchyard-cni: blocks %s and %s overlap", q, p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// Pod is who the attachment is for and what it asks for, from CNI_ARGS and the runtime config.
type Pod struct {
	Namespace string
	Name      string
	// Static is the requested address, when one is requested (runtimeConfig "ips" or CNI_ARGS IP=).
	Static netip.Addr
}

// ParseArgs splits CNI_ARGS ("K=V;K=V") into a map. Keys this plugin does not know are kept and ignored.
func ParseArgs(cniArgs string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(cniArgs) == "" {
		return out, nil
	}
	for _, pair := range strings.Split(cniArgs, ";") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("switchyard-cni: CNI_ARGS entry %q is not KEY=VALUE", pair), "")
		}
		out[k] = v
	}
	return out, nil
}

// PodFromArgs reads the pod's identity (K8S_POD_NAMESPACE, K8S_POD_NAME: required when required is true)
// and a static address request. The runtime config's "ips" and CNI_ARGS IP= may both be given only when
// they name the same address; more than one address is refused (a pod gets one IPv4 address).
func PodFromArgs(cniArgs string, runtimeIPs []string, required bool) (*Pod, error) {
	args, err := ParseArgs(cniArgs)
	if err != nil {
		return nil, err
	}
	pod := &Pod{Namespace: args["K8S_POD_NAMESPACE"], Name: args["K8S_POD_NAME"]}
	if required && (pod.Namespace == "" || pod.Name == "") {
		var missing []string
		if pod.Namespace == "" {
			missing = append(missing, "K8S_POD_NAMESPACE")
		}
		if pod.Name == "" {
			missing = append(missing, "K8S_POD_NAME")
		}
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("switchyard-cni: CNI_ARGS lacks %s: the host veth is named after the pod (the kubelet passes K8S_POD_NAMESPACE and K8S_POD_NAME)", strings.Join(missing, " and ")), "")
	}
	var requests []string
	requests = append(requests, runtimeIPs...)
	if ip, ok := args["IP"]; ok && ip != "" {
		requests = append(requests, strings.Split(ip, ",")...)
	}
	for _, r := range requests {
		addr, err := parseRequestedAddress(r)
		if err != nil {
			return nil, err
		}
		if pod.Static.IsValid() && pod.Static != addr {
			return nil, invalid("switchyard-cni: more than one address requested (%s and %s): a pod gets one IPv4 address", pod.Static, addr)
		}
		pod.Static = addr
	}
	return pod, nil
}

// parseRequestedAddress accepts "10.244.1.7" or "10.244.1.7/32" (any prefix length: only the address counts).
func parseRequestedAddress(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	addr, err := netip.ParseAddr(s)
	if err != nil {
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			return netip.Addr{}, invalid("switchyard-cni: requested address %q is neither an address nor a CIDR", s)
		}
		addr = p.Addr()
	}
	if !addr.Is4() {
		return netip.Addr{}, invalid("switchyard-cni: requested address %s is not IPv4 (only IPv4 pod addresses are supported)", addr)
	}
	return addr, nil
}
