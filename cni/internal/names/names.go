// Package names derives the kernel names the plugin shares with the rest of Switchyard.
package names

import (
	"crypto/sha256"
	"encoding/hex"
)

// HostVeth is the host-side veth name of a pod: "sy" + the first 12 hex characters of
// sha256("<namespace>/<name>"), 14 characters, inside the kernel's 15-character limit. It must equal
// podInterfaceName in src/model/names.ts: the agent's policy rules match packets on this name.
func HostVeth(namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	return "sy" + hex.EncodeToString(sum[:])[:12]
}
