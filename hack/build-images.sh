#!/usr/bin/env bash
# Builds the three OCI images the real-node lab (`lab up --kubelet`) imports into each node's containerd,
# with no container engine and no registry (hack/oci-image.mjs writes the archives):
#   switchyard:dev           what deploy/ runs: Node.js (the binary this project runs on), the bundled
#                            command (dist/cli), switchyard-cni, crds/, samples/, and the Debian packages
#                            the agent drives (iproute2, nftables, iptables, ipset, bird2, conntrack,
#                            iputils-ping, procps), unpacked from their .debs into a rootfs made here
#   switchyard-pause:dev     containerd's sandbox image: a static program of ours (images/cmd/pause)
#   switchyard-workload:dev  the lab's workload pods: a static TCP/UDP server (images/cmd/workload)
# The same inputs give the same archives, kept in a cache outside the repository keyed by their hash.
# Prints the directory holding pause.tar, workload.tar and switchyard.tar on its last line of stdout.
#
# Usage: hack/build-images.sh [--quiet]
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=""
[ "${1:-}" = "--quiet" ] && quiet=1
say() { if [ -z "$quiet" ]; then echo "$@" >&2; fi; }
export PATH="/usr/local/go/bin:/usr/sbin:/sbin:$PATH"

# The agent's tools (test/unit/image-contents.test.ts checks every program the agent and the controller
# execute is in the image and runs there) and the libraries Node.js links.
PACKAGES=(iproute2 nftables iptables ipset bird2 conntrack iputils-ping procps libstdc++6 libgcc-s1)
# Needed only by maintainer scripts, which an unpacked image never runs: not followed into the closure.
SKIP='^(adduser|cdebconf|debconf|dpkg|init-system-helpers|install-info|passwd|perl|perl-base|perl-modules-.*|libperl.*|lib.*-perl|libpam.*|libsemanage.*|libdebian-installer4|libnewt.*|libslang2|libtextwrap1|ucf|sensible-utils|tar|usr-is-merged|usrmerge|libgdbm.*|libdb5\.3|readline-common|libelogind0|libsystemd0)$'

node hack/build.mjs --if-stale >&2
bash hack/build-cni.sh >&2

cache="${SWITCHYARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard}"
key="$(
  {
    sha256sum hack/build-images.sh hack/oci-image.mjs package.json bin/switchyard.mjs dist/cni/switchyard-cni
    find images crds samples dist/cli -type f -print0 | sort -z | xargs -0 sha256sum
    node --version
    printf '%s\n' "${PACKAGES[@]}"
  } | sha256sum | cut -c1-16
)"
out="$cache/images/$key"
if [ -s "$out/switchyard.tar" ] && [ -s "$out/pause.tar" ] && [ -s "$out/workload.tar" ]; then
  echo "$out"
  exit 0
fi
started=$SECONDS
work="$(mktemp -d "${TMPDIR:-/tmp}/sy-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# --- the two static programs --------------------------------------------------------------------
for prog in pause workload; do
  mkdir -p "$work/$prog/rootfs"
  (cd images && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags=-s -o "$work/$prog/rootfs/$prog" "./cmd/$prog")
done
say "$(node hack/oci-image.mjs --rootfs "$work/pause/rootfs" --name docker.io/library/switchyard-pause:dev --entrypoint '["/pause"]' --out "$out/pause.tar")"
say "$(node hack/oci-image.mjs --rootfs "$work/workload/rootfs" --name docker.io/library/switchyard-workload:dev --entrypoint '["/workload"]' --out "$out/workload.tar")"

# --- switchyard:dev --------------------------------------------------------------------------------
root="$work/switchyard/rootfs"
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,tmp,run,var/lib,opt/switchyard/dist,usr/local/bin}
# Debian bookworm's layout is merged-/usr: /bin, /sbin and /lib are links into /usr.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
chmod 1777 "$root/tmp"
mapfile -t debs < <(
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "${PACKAGES[@]}" 2>/dev/null |
    grep -E '^[a-z0-9]' | grep -Ev "$SKIP" | sort -u
)
say "==> switchyard:dev: ${#debs[@]} Debian packages (${PACKAGES[*]} and what they link)"
(cd "$work" && apt-get download -qq "${debs[@]}" >/dev/null 2>"$work/apt.log") || {
  echo "build-images: apt-get download failed:" >&2
  cat "$work/apt.log" >&2
  exit 1
}
for deb in "$work"/*.deb; do dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$root"; done
# update-alternatives never ran: iptables names the nft backend, as on a Debian host.
for t in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save; do
  ln -sf "${t/tables/tables-nft}" "$root/usr/sbin/$t"
done
ln -sf "$(basename "$(ls "$root"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 2>/dev/null || echo ld-linux-x86-64.so.2)")" "$root/usr/lib64/ld-linux-x86-64.so.2" 2>/dev/null || true
[ -e "$root/usr/lib64/ld-linux-x86-64.so.2" ] || ln -sf ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/usr/lib64/ld-linux-x86-64.so.2"
printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/locale"
cp "$(command -v node)" "$root/usr/local/bin/node"
app="$root/opt/switchyard"
mkdir -p "$app/bin" "$app/dist/cni"
cp package.json "$app/"
cp bin/switchyard.mjs "$app/bin/"
cp -r dist/cli "$app/dist/cli"
cp dist/cni/switchyard-cni "$app/dist/cni/"
cp -r crds samples "$app/"
say "$(node hack/oci-image.mjs --rootfs "$root" --name docker.io/library/switchyard:dev --entrypoint '["node","/opt/switchyard/bin/switchyard.mjs"]' --cmd '["--help"]' --workdir /opt/switchyard --out "$out/switchyard.tar")"
say "==> images built in $((SECONDS - started)) s into $out"
echo "$out"
