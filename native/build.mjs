#!/usr/bin/env node
// Builds the native addons (native/sums: checksums; native/flowlabel: IPv6 flow labels and TCP_INFO for
// services/marking) and, with clang, the eBPF marker object (native/ebpf) with the node-gyp that ships with npm. Run by
// `npm ci` / `npm install` (the package's install script) and usable by hand: `node native/build.mjs`.
//
// Headers: a distribution's Node (Debian's /usr/bin/node) carries them in <prefix>/include/node; point
// node-gyp there instead of letting it download them (the machines this runs on may be offline).
//
// A failed build does not fail the install: the port then runs the JS checksums (same results, about
// 0.8–1 more CPU-second per GiB) and says so. CI insists on the native path (test/unit/checksum-native).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** Each addon and what runs without it. */
const addons = [
  { dir: 'sums', without: 'the JS checksums will run' },
  { dir: 'flowlabel', without: 'outbound IPv6 flow labels and TCP_INFO in fireflies are off (marking status says so)' },
];

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch { /* not a dependency: fine */ }
  return candidates.find((c) => existsSync(c));
}

/**
 * native/ebpf: the tc egress flow-label marker for accepted connections (services/marking/ebpf-marker.ts), a BPF
 * object built with clang (-g: the map's BTF, which bpftool needs) against libbpf-dev's headers. Without clang
 * or the headers it is skipped: the marker's status then says "ebpf: not built".
 */
function buildEbpf() {
  const src = join(here, 'ebpf', 'flowlabel-tc.bpf.c');
  const out = join(here, 'ebpf', 'build', 'flowlabel-tc.bpf.o');
  const without = 'accepted connections get no IPv6 flow label (marking status: "ebpf: not built")';
  if (process.platform !== 'linux') return;
  const clang = spawnSync('clang', ['--version'], { stdio: 'ignore' });
  if (clang.error || clang.status !== 0) {
    console.warn(`cargoport: clang not found; native/ebpf not built; ${without}`);
    return;
  }
  if (!existsSync('/usr/include/bpf/bpf_helpers.h')) {
    console.warn(`cargoport: libbpf headers (libbpf-dev) not found; native/ebpf not built; ${without}`);
    return;
  }
  // The kernel UAPI headers include <asm/types.h>, which Debian keeps under the multiarch directory.
  const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout?.trim();
  const inc = multiarch ? ['-I', `/usr/include/${multiarch}`] : [];
  mkdirSync(dirname(out), { recursive: true });
  const run = spawnSync('clang', ['-O2', '-g', '-Wall', '-target', 'bpf', ...inc, '-c', src, '-o', out], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (run.status !== 0) console.warn(`cargoport: building native/ebpf failed (${run.error?.message ?? `exit ${run.status}`}); ${without}`);
}
buildEbpf();

const nodeGyp = findNodeGyp();
if (!nodeGyp) {
  console.warn('cargoport: node-gyp not found; native addons not built (' + addons.map((a) => `${a.dir}: ${a.without}`).join('; ') + ')');
  process.exit(0);
}
const args = [nodeGyp, 'rebuild'];
const prefix = resolve(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
for (const addon of addons) {
  const run = spawnSync(process.execPath, args, { cwd: join(here, addon.dir), stdio: ['ignore', 'inherit', 'inherit'] });
  if (run.status !== 0) {
    console.warn(`cargoport: building native/${addon.dir} failed (${run.error?.message ?? `exit ${run.status}`}); ${addon.without}`);
  }
}
