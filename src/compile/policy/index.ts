// The pure policy engine: parse (api/network-policy), evaluate (the reference), compile, slice, interpret.
export * from "./evaluate";
export * from "./compile";
export * from "./slice";
export * from "./interpret";
export * from "./corpus";
export { canonicalJson, subtractCidrs } from "./canonical";
export { matchesSelector, formatSelector } from "./selector";
export { parsePolicySnapshot, type ParsedPolicies } from "./snapshot";
// The renderers live in src/render; re-exported here so the agent and the lab import the whole policy
// pipeline (compile -> slice -> render) from one place.
export { renderNftables, renderNftablesSetUpdate, nftChainName, nftSetName, type NftRenderOptions } from "../../render/nftables";
export { renderIptables, iptablesChainName, ipsetName, type IptablesRenderOptions, type IptablesRendering } from "../../render/iptables";
