// The lab commands' defaults that their flags show in `--help`: apart from lab.ts so that building the
// command tree does not load the lab.
export const DEFAULT_LAB_PREFIX = "sylab-";
