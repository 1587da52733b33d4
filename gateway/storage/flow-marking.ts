/**
 * Scitags marking of the storage endpoint's accepted connections: a GET served (we supply the data) or a PUT
 * received (the client does) whose flow resolves — `SciTag` header, `scitag.flow` query parameter, else the
 * operator's path defaults — is announced as a flow on its connection (fireflies, flowd pipe), once per
 * connection. Accepted connections carry no flow label: Linux sets one only at connect (specs/scitags.md §6.4),
 * and the eBPF tc marker that could is not built (status: "ebpf: not built").
 */
import type { Socket } from 'node:net';
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
  // HTTP/2: the session's socket (one per connection, cached by Node), not the per-request stand-in.
  const raw = request.raw as unknown as { stream?: { session?: { socket?: Socket } }; socket: Socket };
  const socket = raw.stream?.session?.socket ?? raw.socket;
  m.trackSocket(socket, flow, request.method === 'GET' ? 'send' : 'receive');
}
