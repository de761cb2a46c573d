// The names of the modes and BGP topologies, apart from their zod schemas, so the command line can check
// `--mode`/`--to` without loading zod at every start (`--help` and the daemons' flags need only the names).
export const MODES = ["vxlan", "ipip", "host-gw", "bgp"] as const;
export const BGP_TOPOLOGIES = ["full-mesh", "route-reflectors", "tor"] as const;
