/**
 * Scitags marking of the storage endpoint's accepted connections: a GET served (we supply the data) or a PUT
 * received (the client does) whose flow resolves — `SciTag` header, `scitag.flow` query parameter, else the
 * operator's path defaults — is announced as a flow on its connection (fireflies, flowd pipe), once per
 * connection. Linux sets a socket's flow label only at connect (specs/scitags.md §6.4): accepted connections are
 * labelled by the eBPF tc marker when it is attached (marking.ebpfDevices), else they carry none (status says why).
 */
import { Socket as NetSocket, type Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { marking } from '../../services/marking/marking-service.js';
import { queryFlowParam } from './tpc-copy.js';
import { requestPath, type StorageContext } from './storage-context.js';

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function markAcceptedFlow(ctx: StorageContext, request: FastifyRequest): void {
  const m = marking();
  if (!m.settings.enabled || (request.method !== 'GET' && request.method !== 'PUT')) return;
  let path: string;
  try {
    path = requestPath(ctx, request).path;
  } catch {
    return; // a malformed path: the handler answers it
  }
  const flow = m.resolve({ sciTagHeader: header(request, 'scitag'), queryFlow: queryFlowParam(request.url), paths: [path] });
  if (!flow) return;
  m.trackSocket(connectionSocket(request), flow, request.method === 'GET' ? 'send' : 'receive', undefined, true);
}

const noop = (): void => undefined;

/**
 * The TCP/TLS socket under a request. HTTP/2 requests only show a proxy of their session's socket, which throws
 * once the session is gone (when the flow's end is reported); an EventEmitter method called through the proxy runs
 * on the socket itself and returns it.
 */
function connectionSocket(request: FastifyRequest): Socket {
  const raw = request.raw as unknown as { stream?: { session?: { socket?: Socket } }; socket: Socket };
  const proxy = raw.stream?.session?.socket;
  if (proxy) {
    const real = proxy.removeListener('cargoport:none', noop);
    if (real instanceof NetSocket) return real;
  }
  return raw.socket;
}
