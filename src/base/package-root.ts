// Where the installed package lives (the directory of Switchyard's package.json), found by walking up
// from this module: the same answer from the TypeScript sources (src/base/) and from the compiled
// bundle (dist/, where this code sits in whichever chunk esbuild put it), so the files the program reads
// next to itself (crds/, samples/, the lab's helper scripts, bin/) resolve in a checkout and in the image.
// Looked up on first use, not at import: a program bundled elsewhere (the qemu guest's) that never asks
// for a package file does not need one.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

let root: string | undefined;

/** The package's root directory; throws when this code runs outside a Switchyard package. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "switchyard") return (root = dir);
      } catch {
        // not a readable manifest: keep walking up
      }
    }
    if (dirname(dir) === dir) throw new Error(`no switchyard package.json above ${import.meta.dirname}`);
  }
}

/** A path inside the package, e.g. packagePath("crds"). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
