/**
 * The optional native addon of native/flowlabel (built by `npm ci` through native/build.mjs): outbound TCP
 * connections carrying a chosen IPv6 flow label, and TCP_INFO. Without it (no compiler at install, not Linux)
 * marking still sends fireflies, without `netlink` enrichment, and the socket backend reports why it is off.
 */
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { CargoError } from '../../errors/cargo-error.js';

interface FlowLabelAddon {
  connect6(ip: string, port: number, label: number, timeoutMs: number, cb: (errno: number, fd: number) => void): void;
  tcpInfo(fd: number): Record<string, number> | undefined;
  /** bpf(2) on the eBPF marker's pinned map (ebpf-marker.ts): fd / 0, or -errno. */
  bpfObjGet(path: string): number;
  bpfMapUpdate(fd: number, key: Buffer, value: Buffer): number;
  bpfMapDelete(fd: number, key: Buffer): number;
}

/** Relative to dist/services/marking/ (compiled): the repository's native/ directory. */
const ADDON_PATH = '../../../native/flowlabel/build/Release/cargoport_flowlabel.node';

function load(): { mod?: FlowLabelAddon; reason?: string } {
  if (process.platform !== 'linux') return { reason: `flow labels need Linux (this is ${process.platform})` };
  try {
    return { mod: createRequire(import.meta.url)(ADDON_PATH) as FlowLabelAddon };
  } catch (err) {
    return { reason: `native/flowlabel not loadable (${(err as Error).message.split('\n')[0]}); run npm ci with a C compiler` };
  }
}

const loaded = load();

/** Why the addon is not there, or undefined when it is. */
export const flowLabelAddonMissing: string | undefined = loaded.mod ? undefined : loaded.reason;

/** The addon's bpf(2) calls, or undefined without it. */
export function bpfAddon(): Pick<FlowLabelAddon, 'bpfObjGet' | 'bpfMapUpdate' | 'bpfMapDelete'> | undefined {
  return loaded.mod;
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));

/**
 * A TCP connection to [ip]:port whose every segment carries `label`, as a Node socket. Errors carry the errno
 * name as `code` (ECONNREFUSED, ETIMEDOUT, ERANGE …) so the connectors classify them like Node's own.
 */
export function connectLabelled(ip: string, port: number, label: number, timeoutMs: number): Promise<Socket> {
  const mod = loaded.mod;
  if (!mod) return Promise.reject(new CargoError('CARGO_ERR_INTERNAL', `flow labels asked for without the native addon: ${flowLabelAddonMissing}`));
  return new Promise((resolve, reject) => {
    mod.connect6(ip, port, label, timeoutMs, (errno, fd) => {
      if (errno !== 0) {
        const code = errnoNames.get(errno) ?? `E${errno}`;
        reject(Object.assign(new Error(`connect to [${ip}]:${port} with flow label 0x${label.toString(16)}: ${code}`), { code, errno: -errno, syscall: 'connect' }));
        return;
      }
      resolve(new Socket({ fd, readable: true, writable: true }));
    });
  });
}

/** The kernel file descriptor under a net or TLS socket (Node keeps it on the TCP handle), or undefined. */
export function socketFd(socket: Socket): number | undefined {
  type H = { fd?: number; _parent?: { fd?: number } } | undefined;
  const s = socket as unknown as { _handle?: H; _parent?: { _handle?: H } };
  for (const fd of [s._handle?.fd, s._handle?._parent?.fd, s._parent?._handle?.fd]) {
    if (typeof fd === 'number' && fd >= 0) return fd;
  }
  return undefined;
}

/** TCP_INFO of a socket (µs, bytes, bytes/s), or undefined (no addon, socket closed). */
export function tcpInfoOf(socket: Socket): Record<string, number> | undefined {
  const fd = loaded.mod ? socketFd(socket) : undefined;
  return fd === undefined ? undefined : loaded.mod!.tcpInfo(fd);
}
