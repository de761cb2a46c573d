// IPAM: node blocks and pod addresses. Pure and deterministic: the same pools, nodes and previous
// allocation always give the same answer, so a restarted controller (which reloads the previous
// allocation from the API) re-derives exactly what it had. A node keeps its block while it exists; a
// deleted node's block is released; a full pool is a diagnostic on the node, never a throw.
import type { Diagnostic } from "../../api/diagnostics";
import { cidrContains, cidrsOverlap, formatCidr, formatIPv4, parseCidr, parseIPv4, sizeOf, type Cidr } from "../../api/ipv4";
import { STATIC_IP_ANNOTATION } from "../../api/annotations";

export type BlockAllocation = {
  /** node name -> block CIDR text, for every node that got one. */
  readonly blocks: Readonly<Record<string, string>>;
  /** Blocks still free across all pools (a block held by a node that is gone is not free until released). */
  readonly freeBlocks: number;
  /** Nodes without a block, with the reason: the pools are full, or the block it holds is not one of theirs. */
  readonly diagnostics: readonly (Diagnostic & { node: string; reason: "PoolExhausted" | "BlockOutsidePools" })[];
};

/** Every block of /blockSize in the pools, in pool order then address order. */
export function enumerateBlocks(pools: readonly string[], blockSize: number): Cidr[] {
  const out: Cidr[] = [];
  for (const text of pools) {
    const pool = parseCidr(text);
    if (!pool || blockSize < pool.prefix) continue;
    const step = 2 ** (32 - blockSize);
    for (let a = pool.addr; a < pool.addr + sizeOf(pool); a += step) out.push({ addr: a >>> 0, prefix: blockSize });
  }
  return out;
}

/**
 * Allocates a block to every node.
 *
 * `held` is the allocation as recorded in its own objects (BlockAffinity, node -> block), the source of
 * truth: a node keeps the block it holds, and no other node gets that block or any block overlapping it,
 * also while the holder is gone but its block not yet released (its pods may still use the addresses). A
 * held block that is not a /blockSize block of the pools (they were changed past admission) stays held and
 * its node gets no block, with a diagnostic: moving it would renumber running pods, and handing its
 * addresses to another node could give two pods one address.
 *
 * `previous` is a hint for nodes that hold nothing (the blocks NodeNetworks carried before allocations had
 * objects of their own): kept when still a free valid block. New nodes take the lowest free block, in
 * node-name order.
 */
export function allocateBlocks(
  pools: readonly string[],
  blockSize: number,
  nodes: readonly string[],
  previous: Readonly<Record<string, string>> = {},
  held: Readonly<Record<string, string>> = {},
): BlockAllocation {
  const all = enumerateBlocks(pools, blockSize);
  const valid = new Set(all.map(formatCidr));
  const sortedNodes = [...new Set(nodes)].sort();
  const blocks: Record<string, string> = {};
  const used = new Set<string>();
  const diagnostics: (Diagnostic & { node: string; reason: "PoolExhausted" | "BlockOutsidePools" })[] = [];
  // Held blocks of the pools are aligned blocks of one size, so they overlap only when equal; held ranges
  // outside them (pools changed past admission) are few, and only those need an overlap test.
  const holders = new Map<string, string[]>();
  for (const [node, text] of Object.entries(held)) holders.set(text, [...(holders.get(text) ?? []), node]);
  const stray = [...holders.keys()].filter((t) => !valid.has(t)).flatMap((t) => {
    const c = parseCidr(t);
    return c ? [c] : [];
  });
  const overlapsStray = (b: Cidr): boolean => stray.length > 0 && stray.some((h) => cidrsOverlap(h, b));
  const present = new Set(sortedNodes);
  for (const [text, owners] of [...holders].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const c = parseCidr(text);
    const isValid = valid.has(text);
    if (isValid) used.add(text);
    for (const node of owners.filter((n) => present.has(n)).sort()) {
      if (isValid && c && owners.length === 1 && !overlapsStray(c)) {
        blocks[node] = text;
        continue;
      }
      diagnostics.push({
        node,
        reason: "BlockOutsidePools",
        path: "spec.podCIDRs",
        message: isValid
          ? `node ${node} holds block ${text} (BlockAffinity ${node}), which overlaps a block another node holds: the node gets no block until one of them is released`
          : `node ${node} holds block ${text} (BlockAffinity ${node}), which is not a /${blockSize} block of spec.podCIDRs (${pools.join(", ")}): restore the pools and block size it came from, or drain and delete the node to release it`,
      });
    }
  }
  for (const node of sortedNodes) {
    const prev = previous[node];
    if (blocks[node] !== undefined || held[node] !== undefined || prev === undefined) continue;
    const c = parseCidr(prev);
    if (c && valid.has(prev) && !used.has(prev) && !overlapsStray(c)) {
      blocks[node] = prev;
      used.add(prev);
    }
  }
  let next = 0;
  for (const node of sortedNodes) {
    if (blocks[node] !== undefined || held[node] !== undefined) continue;
    while (next < all.length && (used.has(formatCidr(all[next]!)) || overlapsStray(all[next]!))) next++;
    const b = all[next];
    if (!b) {
      diagnostics.push({
        node,
        reason: "PoolExhausted",
        path: "spec.podCIDRs",
        message: `no free /${blockSize} block left for node ${node}: all ${all.length} blocks of the pools are allocated; append a CIDR to spec.podCIDRs`,
      });
      continue;
    }
    const text = formatCidr(b);
    blocks[node] = text;
    used.add(text);
  }
  const free = stray.length === 0 ? all.length - used.size : all.filter((b) => !used.has(formatCidr(b)) && !overlapsStray(b)).length;
  return { blocks, freeBlocks: free, diagnostics: diagnostics.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)) };
}


export type PodAddressRequest = {
  readonly key: string; // namespace/name
  readonly node: string;
  /** A static address the pod asks for, if any. */
  readonly requested?: string;
  /** The address it already holds (kept while valid). */
  readonly current?: string;
};

export type PodAddressing = {
  readonly addresses: Readonly<Record<string, string>>;
  /** Addresses outside their node's block ("borrowed"): the node routes them as /32s. */
  readonly borrowed: readonly { key: string; node: string; ip: string }[];
  readonly diagnostics: readonly (Diagnostic & { key: string })[];
};

/**
 * Gives every pod an address: a valid static request is honoured (even outside its node's block, as a
 * borrowed /32); otherwise the pod keeps its current address, or takes the lowest free address of its
 * node's block. The first address of each block is reserved for the node's own tunnel/gateway device.
 */
export function assignPodAddresses(
  pools: readonly string[],
  nodeBlocks: Readonly<Record<string, string>>,
  pods: readonly PodAddressRequest[],
): PodAddressing {
  const poolCidrs = pools.map(parseCidr).filter((c): c is Cidr => c !== undefined);
  const reserved = new Set<number>();
  for (const b of Object.values(nodeBlocks)) {
    const c = parseCidr(b);
    if (c) reserved.add(c.addr);
  }
  const taken = new Map<number, string>();
  const addresses: Record<string, string> = {};
  const borrowed: { key: string; node: string; ip: string }[] = [];
  const diagnostics: (Diagnostic & { key: string })[] = [];
  const sorted = [...pods].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  const claim = (p: PodAddressRequest, addr: number): void => {
    taken.set(addr, p.key);
    addresses[p.key] = formatIPv4(addr);
    const block = nodeBlocks[p.node] ? parseCidr(nodeBlocks[p.node]!) : undefined;
    if (!block || !cidrContains(block, addr)) borrowed.push({ key: p.key, node: p.node, ip: formatIPv4(addr) });
  };

  // Pass 1: static requests win, in name order.
  for (const p of sorted) {
    if (p.requested === undefined) continue;
    const addr = parseIPv4(p.requested);
    const path = `metadata.annotations["${STATIC_IP_ANNOTATION}"]`;
    if (addr === undefined) {
      diagnostics.push({ key: p.key, path, message: `"${p.requested}" is not an IPv4 address` });
    } else if (!poolCidrs.some((c) => cidrContains(c, addr))) {
      diagnostics.push({ key: p.key, path, message: `${p.requested} is outside every pool in spec.podCIDRs (${pools.join(", ")})` });
    } else if (reserved.has(addr)) {
      diagnostics.push({ key: p.key, path, message: `${p.requested} is the first address of a node block, reserved for the node's tunnel device` });
    } else if (taken.has(addr)) {
      diagnostics.push({ key: p.key, path, message: `${p.requested} is already used by pod ${taken.get(addr)}` });
    } else {
      claim(p, addr);
    }
  }
  // Pass 2: pods keep their current address while it is free and inside a pool.
  for (const p of sorted) {
    if (addresses[p.key] !== undefined || p.requested !== undefined || p.current === undefined) continue;
    const addr = parseIPv4(p.current);
    if (addr !== undefined && !taken.has(addr) && !reserved.has(addr) && poolCidrs.some((c) => cidrContains(c, addr))) claim(p, addr);
  }
  // Pass 3: the rest take the lowest free address of their node's block.
  for (const p of sorted) {
    if (addresses[p.key] !== undefined || p.requested !== undefined) continue;
    const blockText = nodeBlocks[p.node];
    const block = blockText ? parseCidr(blockText) : undefined;
    if (!block) {
      diagnostics.push({ key: p.key, path: "spec.nodeName", message: `node ${p.node} has no pod block yet (the pools may be full)` });
      continue;
    }
    let found: number | undefined;
    for (let a = block.addr + 1; a < block.addr + sizeOf(block); a++) {
      if (!taken.has(a >>> 0)) {
        found = a >>> 0;
        break;
      }
    }
    if (found === undefined) diagnostics.push({ key: p.key, path: "spec.nodeName", message: `node ${p.node}'s block ${blockText} is full` });
    else claim(p, found);
  }
  return { addresses, borrowed: borrowed.sort((a, b) => (a.ip < b.ip ? -1 : 1)), diagnostics };
}
