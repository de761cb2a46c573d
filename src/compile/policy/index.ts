// The pure policy engine: parse (api/network-policy), evaluate (the reference), compile, slice. The
// renderers (src/render) turn a slice into kernel text; the compile never depends on them.
export * from "./evaluate";
export * from "./compile";
export * from "./slice";
export { canonicalJson, subtractCidrs } from "./canonical";
export { matchesSelector, formatSelector } from "./selector";
export { parsePolicySnapshot, type ParsedPolicies } from "./snapshot";
