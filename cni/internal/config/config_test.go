package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func code(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestParseDefaultsAndFields(t *testing.T) {
	conf, err := Parse([]byte(`{"cniVersion":"1.1.0","name":"sy","type":"switchyard-cni","mtu":1450,
		"blocks":["10.244.1.0/26","10.244.9.0/29"],"policyWaitSeconds":2.5,
		"runtimeConfig":{"ips":["10.244.1.7/32"]},"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if conf.MTU != 1450 || conf.DataDir != DefaultDataDir || conf.AgentStateDir != DefaultAgentStateDir || conf.PolicyWaitSeconds != 2.5 {
		t.Errorf("unexpected conf %+v", conf)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.244.1.0/26"), netip.MustParsePrefix("10.244.9.0/29")}
	if len(conf.ParsedBlocks) != 2 || conf.ParsedBlocks[0] != want[0] || conf.ParsedBlocks[1] != want[1] {
		t.Errorf("blocks %v, want %v", conf.ParsedBlocks, want)
	}
	if len(conf.RuntimeConfig.IPs) != 1 || len(conf.ValidAttachments) != 1 || conf.ValidAttachments[0].ContainerID != "c1" {
		t.Errorf("runtime config or attachments lost: %+v %+v", conf.RuntimeConfig, conf.ValidAttachments)
	}

	conf, err = Parse([]byte(`{"cniVersion":"1.0.0","name":"sy","type":"switchyard-cni","blocks":["10.244.1.0/26"],"dataDir":"/tmp/d","agentStateDir":"/tmp/a"}`))
	if err != nil {
		t.Fatal(err)
	}
	if conf.MTU != DefaultMTU || conf.DataDir != "/tmp/d" || conf.AgentStateDir != "/tmp/a" || conf.PolicyWaitSeconds != 0 {
		t.Errorf("unexpected conf %+v", conf)
	}
}

func TestParseRefusals(t *testing.T) {
	cases := []struct {
		json, want string
		code       uint
	}{
		{`{`, "not valid JSON", types.ErrDecodingFailure},
		{`{"blocks":[]}`, "no blocks", types.ErrInvalidNetworkConfig},
		{`{"blocks":["10.244.1.0/33"]}`, `block "10.244.1.0/33" is not a CIDR`, types.ErrInvalidNetworkConfig},
		{`{"blocks":["fd00::/64"]}`, "is not IPv4", types.ErrInvalidNetworkConfig},
		{`{"blocks":["10.244.1.5/26"]}`, "not written as its network address (10.244.1.0/26)", types.ErrInvalidNetworkConfig},
		{`{"blocks":["10.244.1.0/31"]}`, "too small", types.ErrInvalidNetworkConfig},
		{`{"blocks":["10.244.1.0/26","10.244.1.32/27"]}`, "blocks 10.244.1.0/26 and 10.244.1.32/27 overlap", types.ErrInvalidNetworkConfig},
		{`{"blocks":["10.244.1.0/26"],"mtu":20}`, "mtu 20 is out of range", types.ErrInvalidNetworkConfig},
		{`{"blocks":["10.244.1.0/26"],"policyWaitSeconds":-1}`, "policyWaitSeconds -1 is out of range", types.ErrInvalidNetworkConfig},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) || code(err) != c.code {
			t.Errorf("Parse(%s) = %v (code %d), want an error containing %q with code %d", c.json, err, code(err), c.want, c.code)
		}
	}
}

func TestPodFromArgs(t *testing.T) {
	pod, err := PodFromArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=u;K8S_POD_INFRA_CONTAINER_ID=c", nil, true)
	if err != nil || pod.Namespace != "default" || pod.Name != "web-0" || pod.Static.IsValid() {
		t.Fatalf("got %+v, %v", pod, err)
	}
	_, err = PodFromArgs("K8S_POD_NAMESPACE=default", nil, true)
	if err == nil || code(err) != types.ErrInvalidEnvironmentVariables || !strings.Contains(err.Error(), "CNI_ARGS lacks K8S_POD_NAME") {
		t.Errorf("missing name: %v", err)
	}
	_, err = PodFromArgs("", nil, true)
	if err == nil || !strings.Contains(err.Error(), "K8S_POD_NAMESPACE and K8S_POD_NAME") {
		t.Errorf("missing both: %v", err)
	}
	if pod, err := PodFromArgs("", nil, false); err != nil || pod.Name != "" {
		t.Errorf("not required: %+v %v", pod, err)
	}
	_, err = PodFromArgs("garbage", nil, false)
	if code(err) != types.ErrInvalidEnvironmentVariables {
		t.Errorf("garbage CNI_ARGS: %v", err)
	}
}

func TestStaticRequests(t *testing.T) {
	base := "K8S_POD_NAMESPACE=a;K8S_POD_NAME=b"
	for _, c := range []struct {
		args string
		ips  []string
		want string
	}{
		{base + ";IP=10.244.1.7", nil, "10.244.1.7"},
		{base, []string{"10.244.1.7/32"}, "10.244.1.7"},
		{base, []string{"10.244.1.7"}, "10.244.1.7"},
		{base, []string{"10.244.1.7/26"}, "10.244.1.7"},
		{base + ";IP=10.244.1.7", []string{"10.244.1.7/32"}, "10.244.1.7"},
	} {
		pod, err := PodFromArgs(c.args, c.ips, true)
		if err != nil || pod.Static.String() != c.want {
			t.Errorf("PodFromArgs(%q, %v) = %+v, %v; want static %s", c.args, c.ips, pod, err, c.want)
		}
	}
	for _, c := range []struct {
		args string
		ips  []string
		want string
	}{
		{base + ";IP=10.244.1.8", []string{"10.244.1.7/32"}, "more than one address requested (10.244.1.7 and 10.244.1.8)"},
		{base, []string{"fd00::7"}, "not IPv4"},
		{base + ";IP=ten", nil, `requested address "ten" is neither an address nor a CIDR`},
	} {
		_, err := PodFromArgs(c.args, c.ips, true)
		if err == nil || !strings.Contains(err.Error(), c.want) || code(err) != types.ErrInvalidNetworkConfig {
			t.Errorf("PodFromArgs(%q, %v) = %v, want %q (code 7)", c.args, c.ips, err, c.want)
		}
	}
}
