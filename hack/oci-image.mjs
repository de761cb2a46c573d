#!/usr/bin/env node
// Writes an OCI image archive (an image layout in a tar: oci-layout, index.json, blobs/sha256/*) from one
// root filesystem directory, as a single gzip layer: what `ctr images import` takes, with no registry and no
// container engine. The layer tar is made by GNU tar (sorted, owner 0, mtime 0: the same tree gives the
// same digest); the config, manifest and index are written here. The index names the image twice, as
// containerd reads it (io.containerd.image.name) and as the OCI spec does (org.opencontainers.image.ref.name).
//
// Usage: node hack/oci-image.mjs --rootfs DIR --name REF --out FILE [--entrypoint JSON] [--cmd JSON]
//          [--env K=V]... [--workdir DIR]
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";

const { values } = parseArgs({
  options: {
    rootfs: { type: "string" },
    name: { type: "string" },
    out: { type: "string" },
    entrypoint: { type: "string" },
    cmd: { type: "string" },
    env: { type: "string", multiple: true },
    workdir: { type: "string" },
  },
});
for (const required of ["rootfs", "name", "out"]) {
  if (!values[required]) {
    console.error(`oci-image: --${required} is required`);
    process.exit(2);
  }
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const work = mkdtempSync(join(tmpdir(), "sy-oci-"));
try {
  const blobs = join(work, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const blob = (buf, mediaType) => {
    const digest = sha256(buf);
    writeFileSync(join(blobs, digest), buf);
    return { mediaType, digest: `sha256:${digest}`, size: buf.length };
  };

  const layerTar = join(work, "layer.tar");
  execFileSync("tar", ["-C", values.rootfs, "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "--xattrs", "-cf", layerTar, "."]);
  const tarBytes = readFileSync(layerTar);
  rmSync(layerTar);
  const diffId = `sha256:${sha256(tarBytes)}`;
  const layer = blob(gzipSync(tarBytes, { level: 6 }), "application/vnd.oci.image.layer.v1.tar+gzip");

  const config = {
    architecture: "amd64",
    os: "linux",
    created: "1970-01-01T00:00:00Z",
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...(values.env ?? [])],
      ...(values.entrypoint ? { Entrypoint: JSON.parse(values.entrypoint) } : {}),
      ...(values.cmd ? { Cmd: JSON.parse(values.cmd) } : {}),
      ...(values.workdir ? { WorkingDir: values.workdir } : {}),
    },
    rootfs: { type: "layers", diff_ids: [diffId] },
    history: [{ created: "1970-01-01T00:00:00Z", created_by: "hack/oci-image.mjs" }],
  };
  const configDesc = blob(Buffer.from(JSON.stringify(config)), "application/vnd.oci.image.config.v1+json");
  const manifest = { schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: configDesc, layers: [layer] };
  const manifestDesc = blob(Buffer.from(JSON.stringify(manifest)), "application/vnd.oci.image.manifest.v1+json");
  const tag = values.name.includes(":") ? values.name.slice(values.name.lastIndexOf(":") + 1) : "latest";
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{ ...manifestDesc, platform: { architecture: "amd64", os: "linux" }, annotations: { "io.containerd.image.name": values.name, "org.opencontainers.image.ref.name": tag } }],
  };
  writeFileSync(join(work, "index.json"), JSON.stringify(index));
  writeFileSync(join(work, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const tmpOut = `${values.out}.tmp`;
  execFileSync("tar", ["-C", work, "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-cf", tmpOut, "oci-layout", "index.json", "blobs"]);
  renameSync(tmpOut, values.out);
  console.log(`${values.name}: ${values.out} (layer ${(layer.size / 1e6).toFixed(1)} MB compressed, manifest ${manifestDesc.digest.slice(0, 19)})`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
