// Command cni-driver runs one CNI verb over a conflist through libcni, as a container runtime does:
// plugins found in the CNI_PATH directories, ADD in order with prevResult, DEL in reverse with the cached
// result, CHECK with it, GC with the valid attachments (libcni first DELs the cached attachments not
// listed, then sends GC to every plugin), STATUS to every plugin.
//
//	cni-driver add|check|del|gc|status|version --conflist FILE --cni-path DIR[:DIR...] [--netns PATH]
//	    [--container-id ID] [--ifname eth0] [--args 'K=V;K=V'] [--capability-args JSON]
//	    [--valid-attachments JSON] [--cache-dir DIR] [--timeout 60s]
//
// On success it prints the result (ADD), the plugins' versions (version), or nothing, and exits 0. On
// error it prints {"code":N,"msg":...,"details":...} on stdout (code 0 when the error was not a CNI
// error object, e.g. a plugin not found), a line on stderr, and exits 1; 2 for a usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "cni-driver: %s\nusage: cni-driver add|check|del|gc|status|version --conflist FILE --cni-path DIRS [--netns PATH] [--container-id ID] [--ifname NAME] [--args 'K=V;...'] [--capability-args JSON] [--valid-attachments JSON] [--cache-dir DIR] [--timeout DURATION]\n", msg)
	os.Exit(2)
}

func main() {
	// The verb comes first or after the flags.
	argv := os.Args[1:]
	verb := ""
	if len(argv) > 0 && !strings.HasPrefix(argv[0], "-") {
		verb, argv = argv[0], argv[1:]
	}
	fs := flag.NewFlagSet("cni-driver", flag.ContinueOnError)
	conflist := fs.String("conflist", "", "the network configuration list (a .conflist file)")
	cniPath := fs.String("cni-path", "", "directories holding plugin binaries, ':'-separated")
	netnsPath := fs.String("netns", "", "the pod's network namespace (a path)")
	containerID := fs.String("container-id", "", "the container (sandbox) id")
	ifname := fs.String("ifname", "eth0", "the interface inside the pod")
	cniArgs := fs.String("args", "", "CNI_ARGS, 'K=V;K=V'")
	capArgs := fs.String("capability-args", "", "runtime config for declared capabilities, a JSON object (portMappings, bandwidth, ips, ...)")
	validJSON := fs.String("valid-attachments", "[]", "GC: the attachments to keep, a JSON list of {containerID, ifname}")
	cacheDir := fs.String("cache-dir", "", "libcni's result cache (default: libcni's, /var/lib/cni)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(argv); err != nil {
		usage(err.Error())
	}
	if verb == "" && fs.NArg() > 0 {
		verb = fs.Arg(0)
		_ = fs.Parse(fs.Args()[1:])
	}
	if verb == "" {
		usage("no verb")
	}
	if fs.NArg() > 0 {
		usage(fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	verbName = verb
	if *conflist == "" || *cniPath == "" {
		usage("--conflist and --cni-path are required")
	}

	list, err := libcni.ConfListFromFile(*conflist)
	if err != nil {
		fail(fmt.Errorf("reading %s: %w", *conflist, err))
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(*cniPath), *cacheDir, nil)
	rt := &libcni.RuntimeConf{ContainerID: *containerID, NetNS: *netnsPath, IfName: *ifname}
	if *cniArgs != "" {
		for _, pair := range strings.Split(*cniArgs, ";") {
			k, v, ok := strings.Cut(pair, "=")
			if !ok {
				usage(fmt.Sprintf("--args entry %q is not K=V", pair))
			}
			rt.Args = append(rt.Args, [2]string{k, v})
		}
	}
	if *capArgs != "" {
		if err := json.Unmarshal([]byte(*capArgs), &rt.CapabilityArgs); err != nil {
			usage(fmt.Sprintf("--capability-args: %v", err))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	switch verb {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		if err := result.PrintTo(os.Stdout); err != nil {
			fail(err)
		}
	case "check":
		failIf(cni.CheckNetworkList(ctx, list, rt))
	case "del":
		failIf(cni.DelNetworkList(ctx, list, rt))
	case "gc":
		var valid []types.GCAttachment
		if err := json.Unmarshal([]byte(*validJSON), &valid); err != nil {
			usage(fmt.Sprintf("--valid-attachments: %v", err))
		}
		failIf(cni.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}))
	case "status":
		failIf(cni.GetStatusNetworkList(ctx, list))
	case "version":
		out := map[string]any{}
		for _, p := range list.Plugins {
			info, err := cni.GetVersionInfo(ctx, p.Network.Type)
			if err != nil {
				fail(err)
			}
			out[p.Network.Type] = info.SupportedVersions()
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	default:
		usage(fmt.Sprintf("unknown verb %q", verb))
	}
}

var verbName string

func failIf(err error) {
	if err != nil {
		fail(err)
	}
}

// fail prints the CNI error object inside err (libcni wraps a plugin's error with the plugin's name).
func fail(err error) {
	out := types.Error{Code: 0, Msg: err.Error()}
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		out = *cniErr
	}
	data, _ := json.Marshal(out)
	fmt.Println(string(data))
	fmt.Fprintf(os.Stderr, "cni-driver: %s failed (CNI code %d): %v\n", verbName, out.Code, err)
	os.Exit(1)
}
