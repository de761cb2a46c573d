// Command switchyard-cni is Switchyard's CNI plugin (spec 1.1.0: ADD, DEL, CHECK, STATUS, GC, VERSION).
// The container runtime (or the lab's kubelet) execs it with CNI_* variables and the configuration on
// stdin; see docs/cni.md.
//
// `switchyard-cni --interface-name <namespace> <name>` prints the host veth name of a pod and exits (the
// TypeScript side's cross-check of the name derivation).
package main

import (
	"fmt"
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"switchyard.dev/cni/internal/names"
	"switchyard.dev/cni/internal/plugin"
)

// version is set at build time (hack/build-cni.sh: -X main.version=...).
var version = "dev"

func main() {
	if len(os.Args) == 4 && os.Args[1] == "--interface-name" {
		fmt.Println(names.HostVeth(os.Args[2], os.Args[3]))
		return
	}
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    plugin.Add,
		Del:    plugin.Del,
		Check:  plugin.Check,
		GC:     plugin.GC,
		Status: plugin.Status,
	}, plugin.Versions, "switchyard-cni "+version+": Switchyard's pod network plugin")
}
