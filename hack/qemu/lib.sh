# shellcheck shell=bash
# Why: the machines Switchyard is built on run a kernel without ipip (and gre, wireguard), so data-plane
# checks that need them boot Debian's own cloud kernel under qemu/TCG (KVM does not work there) with a
# small initramfs and read a verdict from the serial console (docs/qemu.md, reference/full-kernel-vm.md).
# This file is the reusable part: host packages, the kernel (downloaded, never installed: nothing goes to
# the host's /boot or /lib/modules), the initramfs (rebuilt only when its inputs change) and the boot.
# Entry points (hack/qemu-*.sh) source it and supply the check program, the module list and the verdict.
set -euo pipefail

QEMU_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
QEMU_CACHE="${SWITCHYARD_CACHE:-${HOME:-/root}/.cache/switchyard}/qemu"
# Debian's metapackage that always depends on the current cloud kernel (the ABI changes with updates).
QEMU_KERNEL_META="linux-image-cloud-amd64"

qemu_log() { printf '==> %s\n' "$*" >&2; }
qemu_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The console as text: no carriage returns, no terminal control sequences (SeaBIOS clears the screen).
# One unbuffered sed, so the console streams line by line.
qemu_clean() { sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g'; }

# Seconds since the epoch with milliseconds, for the timings this script prints.
qemu_now() { date +%s.%N | cut -c1-14; }
qemu_since() { awk -v a="$1" -v b="$(qemu_now)" 'BEGIN { printf "%.1f", b - a }'; }

# Programs an entry point adds to the guest (each copied to the same path, with its shared libraries), e.g.
# QEMU_EXTRA_PROGRAMS=(/usr/sbin/bird /usr/sbin/birdc). Set it after sourcing this file; empty by default.
declare -p QEMU_EXTRA_PROGRAMS >/dev/null 2>&1 || QEMU_EXTRA_PROGRAMS=()
# The guest's memory in MiB.
QEMU_MEMORY_MB="${QEMU_MEMORY_MB:-1024}"
# Extra kernel command-line arguments an entry point adds (e.g. `preempt=full`); empty by default.
QEMU_KERNEL_ARGS="${QEMU_KERNEL_ARGS:-}"
# Extra qemu options from the environment, split on spaces, for diagnosis: e.g.
# QEMU_EXTRA_ARGS="-monitor unix:/tmp/qmon.sock,server,nowait", then `info jit` through that socket shows the
# translation cache's fill and its flush count (docs/qemu.md). Empty by default.
QEMU_EXTRA_ARGS="${QEMU_EXTRA_ARGS:-}"

# Installs the Debian packages behind the host tools the run needs, only when one is missing.
#   qemu_ensure_host_packages [PATH=PACKAGE ...]   (extra tools an entry point copies into its guest)
qemu_ensure_host_packages() {
  local -a missing=()
  local -A need=(
    [/usr/bin/qemu-system-x86_64]=qemu-system-x86 [/bin/busybox]=busybox-static [/usr/bin/cpio]=cpio
    [/sbin/depmod]=kmod [/usr/bin/kmod]=kmod [/usr/sbin/ip]=iproute2 [/usr/sbin/nft]=nftables
    [/usr/bin/ping]=iputils-ping [/usr/sbin/sysctl]=procps
  )
  local path extra
  for extra in "$@"; do
    [[ "$extra" == /*=* ]] || qemu_die "qemu_ensure_host_packages: expected PATH=PACKAGE, got '$extra'"
    need[${extra%%=*}]="${extra#*=}"
  done
  for path in "${!need[@]}"; do
    [ -x "$path" ] || missing+=("${need[$path]}")
  done
  # A dynamically linked busybox (package `busybox`) cannot run in the initramfs without its libraries.
  if [ -x /bin/busybox ] && ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    missing+=(busybox-static)
  fi
  [ "${#missing[@]}" -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  [ "$(id -u)" -eq 0 ] || qemu_die "missing packages ${missing[*]}, and installing them needs root"
  qemu_log "installing Debian packages: ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Prints the versioned kernel package the metapackage depends on now (e.g. linux-image-6.1.0-56-cloud-amd64).
# Falls back to the newest kernel already in the cache when apt cannot tell (no package lists, offline).
qemu_resolve_kernel_package() {
  local pkg
  pkg="$(apt-cache depends "$QEMU_KERNEL_META" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')"
  if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || true
    pkg="$(apt-cache depends "$QEMU_KERNEL_META" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')"
  fi
  if [ -z "$pkg" ]; then
    local cached
    cached="$(find "$QEMU_CACHE/kernels" -mindepth 1 -maxdepth 1 -type d -name '*-cloud-amd64' -printf '%f\n' 2>/dev/null | sort -V | tail -1)"
    [ -n "$cached" ] || qemu_die "apt does not know $QEMU_KERNEL_META and no kernel is cached in $QEMU_CACHE/kernels"
    qemu_log "apt cannot resolve $QEMU_KERNEL_META; using the cached kernel $cached"
    pkg="linux-image-$cached"
  fi
  printf '%s\n' "$pkg"
}

# Makes $QEMU_CACHE/kernels/<kver> hold the unpacked kernel package with modules.dep, and sets
# QEMU_KVER and QEMU_KDIR. SWITCHYARD_QEMU_KERNEL_DEB=/path/to/linux-image-...deb pins a kernel (keep the
# .deb somewhere you control). Call it directly, not in $(...): it sets variables.
qemu_fetch_kernel() {
  local deb pkg kver dir tmp
  if [ -n "${SWITCHYARD_QEMU_KERNEL_DEB:-}" ]; then
    deb="$SWITCHYARD_QEMU_KERNEL_DEB"
    [ -f "$deb" ] || qemu_die "SWITCHYARD_QEMU_KERNEL_DEB=$deb does not exist"
    pkg="$(dpkg-deb -f "$deb" Package)"
  else
    pkg="$(qemu_resolve_kernel_package)"
  fi
  kver="${pkg#linux-image-}"
  dir="$QEMU_CACHE/kernels/$kver"
  QEMU_KVER="$kver"
  QEMU_KDIR="$dir"
  if [ -f "$dir/.complete" ]; then
    qemu_log "kernel $kver: cached"
    return 0
  fi
  mkdir -p "$QEMU_CACHE/debs" "$QEMU_CACHE/kernels"
  if [ -z "${deb:-}" ]; then
    deb="$(find "$QEMU_CACHE/debs" -maxdepth 1 -name "${pkg}_*_amd64.deb" | sort -V | tail -1)"
    if [ -z "$deb" ]; then
      qemu_log "downloading $pkg (about 27 MB) into $QEMU_CACHE/debs"
      # The sandbox user _apt cannot write to a root-owned cache folder; the download is still verified.
      (cd "$QEMU_CACHE/debs" && apt-get -o APT::Sandbox::User=root -qq download "$pkg" >&2)
      deb="$(find "$QEMU_CACHE/debs" -maxdepth 1 -name "${pkg}_*_amd64.deb" | sort -V | tail -1)"
      [ -n "$deb" ] || qemu_die "apt-get download $pkg produced no .deb"
    fi
  fi
  qemu_log "unpacking $(basename "$deb")"
  tmp="$(mktemp -d "$QEMU_CACHE/kernels/.unpack.XXXXXX")"
  QEMU_STAGING="$tmp"
  dpkg -x "$deb" "$tmp"
  [ -f "$tmp/boot/vmlinuz-$kver" ] && [ -d "$tmp/lib/modules/$kver" ] || qemu_die "$deb has no vmlinuz-$kver or modules"
  depmod -b "$tmp" "$kver"
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  QEMU_STAGING=""
}

# Prints the module files (relative to lib/modules/<kver>) of the named modules and everything they
# depend on. Names may be shell globs (nft_*); a name that matches nothing is an error.
qemu_module_closure() {
  local kdir="$1" kver="$2"
  shift 2
  local moddir="$kdir/lib/modules/$kver"
  local -a names=()
  local pat found
  for pat in "$@"; do
    found="$(find "$moddir/kernel" -name "$pat.ko*" -printf '%f\n' | sed 's/\.ko.*$//' | sort -u)"
    [ -n "$found" ] || qemu_die "no kernel module matches $pat in $kver"
    mapfile -t -O "${#names[@]}" names <<<"$found"
  done
  # modules.dep lines are `path: dep dep ...`; walk them to a fixed point (bounded by the module count).
  awk -v want="$(printf '%s ' "${names[@]}")" '
    {
      key = $1; sub(/:$/, "", key)
      base = key; sub(/.*\//, "", base); sub(/\.ko.*$/, "", base); gsub(/-/, "_", base)
      path[base] = key; deps[key] = ""
      for (i = 2; i <= NF; i++) deps[key] = deps[key] " " $i
    }
    END {
      n = split(want, w, " ")
      for (i = 1; i <= n; i++) { b = w[i]; gsub(/-/, "_", b); if (b in path) { todo[path[b]] = 1 } }
      for (round = 0; round < 1000; round++) {
        added = 0
        for (k in todo) {
          if (k in done) continue
          done[k] = 1; added = 1
          m = split(deps[k], d, " ")
          for (j = 1; j <= m; j++) todo[d[j]] = 1
        }
        if (!added) break
      }
      for (k in done) print k
    }' "$moddir/modules.dep" | sort
}

# Copies a program and the shared libraries it links (per ldd) into the staging root, keeping paths.
qemu_copy_program() {
  local root="$1" src="$2" dest="${3:-$2}"
  local lib
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$src" "$root$dest"
  while read -r lib; do
    [ -n "$lib" ] || continue
    if [ ! -e "$root$lib" ]; then
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    fi
  done < <(ldd "$src" 2>/dev/null | grep -o '/[^ ]*' | sort -u)
}

# The programs the guest gets besides busybox: source path on the host -> path in the guest.
# bash runs /init (busybox sh would run its own `ip` applet, which has no netns support); iproute2, nft,
# iputils ping (busybox ping cannot set DF), procps sysctl and kmod's modprobe are what the agent and the
# checks call; node runs the bundled check program. Then the entry point's QEMU_EXTRA_PROGRAMS.
qemu_guest_programs() {
  local node_bin extra
  node_bin="$(command -v node)"
  printf '%s %s\n' \
    /bin/bash /bin/bash \
    /usr/sbin/ip /usr/sbin/ip \
    /usr/sbin/bridge /usr/sbin/bridge \
    /usr/sbin/nft /usr/sbin/nft \
    /usr/bin/ping /usr/bin/ping \
    /usr/sbin/sysctl /usr/sbin/sysctl \
    /usr/bin/kmod /usr/bin/kmod \
    "$node_bin" /usr/bin/node
  for extra in "${QEMU_EXTRA_PROGRAMS[@]}"; do printf '%s %s\n' "$extra" "$extra"; done
}

# The identity of everything that goes into an initramfs, so an unchanged input set reuses the cpio.
# Host programs are identified by path, size and mtime (hashing node's 99 MB on every run costs time).
qemu_initramfs_key() {
  local kdir="$1" kver="$2" bundle_dir="$3"
  shift 3
  {
    echo "kernel $kver"
    sha256sum "$QEMU_LIB_DIR/lib.sh" "$QEMU_LIB_DIR/init.sh"
    (cd "$bundle_dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    echo "modules $*"
    qemu_guest_programs | while read -r src _; do stat -L -c '%n %s %Y' "$src"; done
    stat -L -c '%n %s %Y' /bin/busybox
  } | sha256sum | cut -c1-16
}

# Builds (or reuses) the initramfs for a kernel, a check bundle and a module list; sets QEMU_CPIO.
#   qemu_build_initramfs NAME KDIR KVER BUNDLE_DIR MODULE...
# BUNDLE_DIR is copied to /check in the guest; /init runs `node /check/check.mjs`. Call it directly.
qemu_build_initramfs() {
  local name="$1" kdir="$2" kver="$3" bundle_dir="$4"
  shift 4
  local key out root extra
  # Checked here, not in qemu_guest_programs: that one runs in subshells, where qemu_die cannot stop the build.
  for extra in "${QEMU_EXTRA_PROGRAMS[@]}"; do
    [ -x "$extra" ] || qemu_die "extra guest program $extra is missing on the host"
  done
  key="$(qemu_initramfs_key "$kdir" "$kver" "$bundle_dir" "$@")"
  out="$QEMU_CACHE/initramfs/$name-$key.cpio"
  QEMU_CPIO="$out"
  if [ -s "$out" ]; then
    qemu_log "initramfs unchanged, reusing $(basename "$out")"
    return 0
  fi
  mkdir -p "$QEMU_CACHE/initramfs"
  root="$(mktemp -d "$QEMU_CACHE/initramfs/.root.XXXXXX")"
  # qemu_cleanup (the caller's EXIT trap) removes it if this is interrupted.
  QEMU_STAGING="$root"
  (
    set -euo pipefail
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,run,tmp,etc,var,check}
    ln -s ../run "$root/var/run"
    cp /bin/busybox "$root/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
      [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    local src dest
    while read -r src dest; do qemu_copy_program "$root" "$src" "$dest"; done < <(qemu_guest_programs)
    rm -f "$root/bin/sh" && ln -s busybox "$root/bin/sh"
    for applet in modprobe insmod rmmod lsmod modinfo; do
      rm -f "$root/sbin/$applet" "$root/bin/$applet"
      ln -s /usr/bin/kmod "$root/sbin/$applet"
    done
    # Names for `ip` (rt_protos, ...), as on the host, so `ip -j` prints the same words in the guest.
    [ -d /usr/share/iproute2 ] && mkdir -p "$root/usr/share" && cp -r /usr/share/iproute2 "$root/usr/share/"
    [ -d /etc/iproute2 ] && cp -r /etc/iproute2 "$root/etc/"
    printf 'root:x:0:0:root:/root:/bin/bash\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
    # Kernel modules and their dependencies, then the module index for modprobe (autoload included).
    local moddir="lib/modules/$kver" m
    mkdir -p "$root/$moddir"
    cp "$kdir/$moddir"/modules.{order,builtin,builtin.modinfo} "$root/$moddir/"
    while read -r m; do
      mkdir -p "$root/$moddir/$(dirname "$m")"
      cp "$kdir/$moddir/$m" "$root/$moddir/$m"
    done < <(qemu_module_closure "$kdir" "$kver" "$@")
    depmod -b "$root" "$kver"
    cp "$QEMU_LIB_DIR/init.sh" "$root/init"
    chmod 755 "$root/init"
    cp -r "$bundle_dir"/. "$root/check/"
    # Uncompressed on purpose: decompressing under TCG costs more than copying (full-kernel-vm.md).
    (cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$out.tmp"
  ) || { rm -rf "$root" "$out.tmp"; QEMU_STAGING=""; qemu_die "building the initramfs failed"; }
  rm -rf "$root"
  QEMU_STAGING=""
  mv "$out.tmp" "$out"
  # Older builds of this initramfs are dead weight (about 120 MB each).
  find "$QEMU_CACHE/initramfs" -maxdepth 1 -name "$name-*.cpio" ! -name "$(basename "$out")" -delete
  qemu_log "initramfs built: $(basename "$out") ($(du -m "$out" | cut -f1) MB)"
}

# Boots the kernel with the initramfs under TCG, streaming the serial console to stdout and LOG.
#   qemu_boot KDIR KVER CPIO LOG TIMEOUT_SECONDS
# Returns qemu's exit status (124 when the timeout killed it). The VM has no NIC: all traffic stays in
# network namespaces inside the guest.
qemu_boot() {
  local kdir="$1" kver="$2" cpio="$3" log="$4" limit="$5"
  local status=0
  : >"$log"
  # QEMU_EXTRA_ARGS is split into words on purpose.
  # shellcheck disable=SC2086
  timeout --kill-after=10 "$limit" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp 2 -m "$QEMU_MEMORY_MB" \
    -nic none -nographic -no-reboot $QEMU_EXTRA_ARGS \
    -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$cpio" \
    -append "console=ttyS0 panic=-1 quiet${QEMU_KERNEL_ARGS:+ $QEMU_KERNEL_ARGS}" \
    </dev/null >"$log" 2>&1 &
  QEMU_PID=$!
  # Follow the console until qemu is gone (tail exits once that pid has exited and the file is drained).
  # Both run in the background and are awaited with `wait`, which a signal interrupts at once, so an
  # interrupted run reaches the EXIT trap (and kills qemu) without waiting for the guest.
  tail -n +1 -f --pid="$QEMU_PID" "$log" | qemu_clean &
  QEMU_TAIL_PID=$!
  wait "$QEMU_PID" || status=$?
  QEMU_PID=""
  wait "$QEMU_TAIL_PID" || true
  QEMU_TAIL_PID=""
  return "$status"
}

# Kills the qemu this shell started (by pid) and removes a half-built staging tree; for EXIT traps.
qemu_cleanup() {
  local pid
  for pid in "${QEMU_PID:-}" "${QEMU_TAIL_PID:-}"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      # `timeout` passes the TERM on to qemu, its child.
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "${QEMU_STAGING:-}" ] && [ -d "$QEMU_STAGING" ]; then rm -rf "$QEMU_STAGING"; fi
}

# The guest's verdict: the last `N passed, M failed` line of the console log. Exit 0 iff N > 0 and M == 0.
qemu_verdict() {
  local log="$1" line passed failed
  line="$(qemu_clean <"$log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1 || true)"
  if [ -z "$line" ]; then
    echo "no verdict: the guest printed no 'N passed, M failed' line (console log: $log)" >&2
    return 1
  fi
  passed="${line%% passed*}"
  failed="${line#*, }"
  failed="${failed%% failed}"
  [ "$passed" -gt 0 ] && [ "$failed" -eq 0 ]
}
