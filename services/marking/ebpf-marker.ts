/**
 * The eBPF backend: IPv6 flow labels on connections the port ACCEPTED (the storage endpoint serving downloads, the
 * TPC passive side, uploads into it). Linux lets a socket choose its label only at connect (specs/scitags.md §6.4),
 * so a tc egress (clsact) classifier (native/ebpf/flowlabel-tc.bpf.c, built with clang at install) rewrites the
 * label of packets whose 5-tuple is in its hash map; this module loads it, keeps the map in step with the flows
 * (a bpf(2) update through native/flowlabel at flow start, a delete at the end: synchronous, microseconds) and
 * detaches it.
 *
 * Loading (once per process, with bpftool and iproute2; root or CAP_BPF + CAP_NET_ADMIN):
 *   bpftool prog load OBJ /sys/fs/bpf/cargoport-<pid>-<handle>/prog type classifier pinmaps …/maps
 *   tc qdisc add dev DEV clsact            (kept if it exists; left in place at detach: other users may share it)
 *   tc filter add dev DEV egress pref 49152 handle <handle> bpf da object-pinned …/prog
 * Each process attaches its own copy with its own map under one pref (the program never ends classification), so
 * a gateway and worker processes, or parallel test runs, do not step on each other. Detach deletes exactly our
 * filter and pins; pins left by a process that died are swept at the next attach.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, readdirSync, rmSync, mkdirSync, readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isIPv6 } from 'node:net';
import { bpfAddon, flowLabelAddonMissing } from './native-flowlabel.js';

/** Relative to dist/services/marking/ (compiled): the object native/build.mjs builds. */
export const EBPF_OBJECT = fileURLToPath(new URL('../../../native/ebpf/build/flowlabel-tc.bpf.o', import.meta.url));
const BPFFS = '/sys/fs/bpf';
const PREF = 49152;
const PIN_PREFIX = 'cargoport-';

function run(cmd: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, _out, stderr) => {
      if (!err) return resolve();
      const code = (err as NodeJS.ErrnoException).code;
      // bpftool ends every failure with a strict-mode notice; keep the lines that say what went wrong.
      const lines = String(stderr).split('\n').map((l) => l.trim()).filter((l) => l && !/^Warning: bpftool is now running|^If it used to work/.test(l));
      const telling = [...lines.filter((l) => /not permitted|denied/i.test(l)), ...lines.filter((l) => /error|cannot|failed/i.test(l))];
      const why = code === 'ENOENT' ? `${cmd} not found` : ([...new Set([(telling.length ? telling : lines)[0], lines.at(-1)])].filter(Boolean).map((l) => l!.slice(0, 200)).join(' / ') || err.message);
      reject(Object.assign(err, { reason: `${cmd} ${args.slice(0, 3).join(' ')}…: ${why}` }));
    });
  });
}

const reasonOf = (e: unknown): string => (e as { reason?: string }).reason ?? (e as Error).message;

/** Why the eBPF marker cannot be built / loaded here before trying, or undefined. */
export function ebpfUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `ebpf: needs Linux (this is ${process.platform})`;
  if (!existsSync(EBPF_OBJECT)) return 'ebpf: not built (native/ebpf/build/flowlabel-tc.bpf.o is missing: clang and libbpf-dev were not there at npm ci; install them and run node native/build.mjs)';
  if (flowLabelAddonMissing) return `ebpf: needs native/flowlabel for its map updates (${flowLabelAddonMissing})`;
  return undefined;
}

/** 16 bytes of an IPv6 address (no zone), or undefined. */
export function ipv6Bytes(ip: string): Buffer | undefined {
  const a = ip.split('%')[0]!;
  if (!isIPv6(a)) return undefined;
  const [head, tail] = a.includes('::') ? a.split('::') as [string, string] : [a, undefined];
  const words = (s: string | undefined): number[] => {
    if (!s) return [];
    const out: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const [b0, b1, b2, b3] = part.split('.').map(Number) as [number, number, number, number];
        out.push((b0 << 8) | b1, (b2 << 8) | b3);
      } else out.push(parseInt(part, 16));
    }
    return out;
  };
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8) return undefined;
  const b = Buffer.alloc(16);
  all.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
}

/** The map key (struct flow_key): local address, remote address, local port, remote port (ports big-endian). */
export function flowKey(localIp: string, localPort: number, remoteIp: string, remotePort: number): Buffer | undefined {
  const l = ipv6Bytes(localIp);
  const r = ipv6Bytes(remoteIp);
  if (!l || !r) return undefined;
  const k = Buffer.alloc(36);
  l.copy(k, 0);
  r.copy(k, 16);
  k.writeUInt16BE(localPort, 32);
  k.writeUInt16BE(remotePort, 34);
  return k;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class EbpfMarker {
  private errors = 0;
  lastError?: string;

  private constructor(readonly devices: readonly string[], private readonly dir: string, private readonly handle: number, private mapFd: number) {}

  /**
   * Loads and attaches the marker on `devices`, or returns why it cannot (a sentence for status: nothing here is
   * an error of a request, so no CargoError).
   */
  static async attach(devices: readonly string[]): Promise<EbpfMarker | string> {
    const missing = ebpfUnavailable();
    if (missing) return missing;
    if (!existsSync(BPFFS)) return `ebpf: ${BPFFS} does not exist (no bpf filesystem)`;
    if (!readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === BPFFS)) {
      // systemd mounts it at boot; containers often do not. Pinning needs it.
      try {
        await run('mount', ['-t', 'bpf', 'bpf', BPFFS]);
      } catch (e) {
        return `ebpf: the bpf filesystem is not mounted on ${BPFFS} and mounting it failed (${reasonOf(e)})`;
      }
    }
    await EbpfMarker.sweep(devices);
    const handle = ((process.pid & 0xffff) << 8 | Math.floor(Math.random() * 256)) >>> 0 || 1;
    const dir = `${BPFFS}/${PIN_PREFIX}${process.pid}-${handle.toString(16)}`;
    const cleanup = async (attached: string[]): Promise<void> => {
      for (const d of attached) await run('tc', ['filter', 'del', 'dev', d, 'egress', 'pref', String(PREF), 'handle', `0x${handle.toString(16)}`, 'bpf']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      mkdirSync(dir);
      await run('bpftool', ['prog', 'load', EBPF_OBJECT, `${dir}/prog`, 'type', 'classifier', 'pinmaps', `${dir}/maps`]);
    } catch (e) {
      await cleanup([]);
      const r = reasonOf(e);
      const priv = /Operation not permitted|EPERM|permission/i.test(r) ? ` — not privileged? loading needs root or CAP_BPF + CAP_NET_ADMIN (uid ${process.getuid?.()})` : '';
      return `ebpf: load failed: ${r}${priv}`;
    }
    const attached: string[] = [];
    try {
      for (const d of devices) {
        await run('tc', ['qdisc', 'add', 'dev', d, 'clsact']).catch((e: unknown) => {
          if (!/File exists|Exclusivity/i.test(reasonOf(e))) throw e;
        });
        await run('tc', ['filter', 'add', 'dev', d, 'egress', 'pref', String(PREF), 'handle', `0x${handle.toString(16)}`, 'bpf', 'da', 'object-pinned', `${dir}/prog`]);
        attached.push(d);
      }
    } catch (e) {
      await cleanup(attached);
      return `ebpf: attach failed: ${reasonOf(e)}`;
    }
    const fd = bpfAddon()!.bpfObjGet(`${dir}/maps/cargoport_flows`);
    if (fd < 0) {
      await cleanup(attached);
      return `ebpf: opening the pinned flow map failed (errno ${-fd})`;
    }
    return new EbpfMarker(devices, dir, handle, fd);
  }

  /** Removes the filters and pins of processes that are gone (killed before they could detach). */
  private static async sweep(devices: readonly string[]): Promise<void> {
    for (const name of readdirSync(BPFFS)) {
      const m = /^cargoport-(\d+)-([0-9a-f]+)$/.exec(name);
      if (!m || pidAlive(Number(m[1]))) continue;
      for (const d of devices) await run('tc', ['filter', 'del', 'dev', d, 'egress', 'pref', String(PREF), 'handle', `0x${m[2]}`, 'bpf']).catch(() => undefined);
      rmSync(`${BPFFS}/${name}`, { recursive: true, force: true });
    }
  }

  /** The filter handle (tc filter show … egress lists it while attached). */
  get filterHandle(): number {
    return this.handle;
  }

  get errorCount(): number {
    return this.errors;
  }

  /** Labels the packets the port sends on this connection; false (counted) when the map refuses. */
  mark(key: Buffer, label: number): boolean {
    if (this.mapFd < 0) return false;
    const v = Buffer.alloc(4);
    if (endianness() === 'LE') v.writeUInt32LE(label >>> 0);
    else v.writeUInt32BE(label >>> 0);
    const r = bpfAddon()!.bpfMapUpdate(this.mapFd, key, v);
    if (r === 0) return true;
    this.errors++;
    this.lastError = `map update: errno ${-r}${r === -7 ? ' (E2BIG: the map is full)' : ''}`;
    return false;
  }

  unmark(key: Buffer): void {
    if (this.mapFd >= 0) bpfAddon()!.bpfMapDelete(this.mapFd, key);
  }

  /** Detaches the filters and removes the pins (the kernel frees program and map with their last reference). */
  async detach(): Promise<void> {
    if (this.mapFd >= 0) closeSync(this.mapFd);
    this.mapFd = -1;
    for (const d of this.devices) {
      await run('tc', ['filter', 'del', 'dev', d, 'egress', 'pref', String(PREF), 'handle', `0x${this.handle.toString(16)}`, 'bpf']).catch((e: unknown) => {
        this.lastError = `detach from ${d}: ${reasonOf(e)}`;
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
