/**
 * Incremental parser for the HTTP-TPC performance-marker stream (wlcg.md §3.2): blocks of
 *   Perf Marker / Timestamp: / Stripe Index: / Stripe Bytes Transferred: / Total Stripe Count: /
 *   RemoteConnections: / End
 * followed by one terminal line `success: …` or `failure: …` (davix also accepts `failed…` / `aborted…`).
 * Lenient like davix: lines trimmed, keys matched case-insensitively by prefix, dCache's indentation and
 * extra keys ignored. Bytes are summed over stripes (per-stripe latest value). An active party that floods the
 * stream (a line longer than MAX_LINE, absurd stripe counts) fails the copy with CARGO_ERR_PEER_PROTOCOL.
 */
import { TransferError, TransferErrorCode } from '../transfer-errors.js';

export interface PerfMarker {
  timestamp?: number;
  stripeIndex: number;
  stripeBytes: number;
  totalStripes: number;
  remoteConnections: string[];
}

export type TpcTerminal = { ok: true; message: string } | { ok: false; message: string };

export interface PerfMarkerEvents {
  onMarker?(m: PerfMarker, totalBytes: number): void;
}

const MAX_STRIPES = 8192;
const MAX_LINE = 64 * 1024;

export class PerfMarkerParser {
  private partial = '';
  private current: PerfMarker | undefined;
  private readonly stripeBytes = new Map<number, number>();
  terminal: TpcTerminal | undefined;
  /** Sum over stripes of the latest `Stripe Bytes Transferred`. */
  totalBytes = 0;
  remoteConnections: string[] = [];
  markers = 0;

  constructor(private readonly events: PerfMarkerEvents = {}) {}

  /** Feed decoded text; complete lines are processed, a trailing partial line is kept. */
  push(text: string): void {
    const data = this.partial + text;
    let start = 0;
    for (;;) {
      const nl = data.indexOf('\n', start);
      if (nl === -1) break;
      this.line(data.slice(start, nl));
      start = nl + 1;
    }
    this.partial = data.slice(start);
    if (this.partial.length > MAX_LINE) throw new TransferError(TransferErrorCode.peerProtocol, `third-party copy: performance marker line longer than ${MAX_LINE} bytes`);
  }

  /** End of stream: a final line without newline still counts. */
  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  private line(raw: string): void {
    const line = raw.trim();
    if (line === '' || this.terminal) return;
    const lower = line.toLowerCase();
    if (lower === 'perf marker') {
      this.current = { stripeIndex: 0, stripeBytes: 0, totalStripes: 1, remoteConnections: [] };
      return;
    }
    if (this.current) {
      if (lower === 'end') {
        this.finishMarker(this.current);
        this.current = undefined;
        return;
      }
      const colon = line.indexOf(':');
      if (colon === -1) return;
      const key = lower.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (key.startsWith('timestamp')) this.current.timestamp = Number(value);
      else if (key.startsWith('stripe index')) this.current.stripeIndex = Number(value) || 0;
      else if (key.startsWith('stripe bytes transferred')) this.current.stripeBytes = Number(value) || 0;
      else if (key.startsWith('total stripe count')) this.current.totalStripes = Number(value) || 1;
      else if (key.startsWith('remoteconnections')) {
        this.current.remoteConnections = value.split(',').map((s) => s.trim()).filter(Boolean);
      }
      return;
    }
    if (lower.startsWith('success')) this.terminal = { ok: true, message: afterColon(line) };
    else if (lower.startsWith('failure') || lower.startsWith('failed') || lower.startsWith('aborted')) {
      this.terminal = { ok: false, message: afterColon(line) || line };
    }
  }

  private finishMarker(m: PerfMarker): void {
    if (m.totalStripes > MAX_STRIPES || m.stripeIndex >= MAX_STRIPES) throw new TransferError(TransferErrorCode.peerProtocol, `third-party copy: more than ${MAX_STRIPES} stripes in a performance marker`);
    this.stripeBytes.set(m.stripeIndex, m.stripeBytes);
    let total = 0;
    for (const b of this.stripeBytes.values()) total += b;
    this.totalBytes = total;
    if (m.remoteConnections.length) this.remoteConnections = m.remoteConnections;
    this.markers++;
    this.events.onMarker?.(m, total);
  }
}

function afterColon(line: string): string {
  const i = line.indexOf(':');
  return i === -1 ? '' : line.slice(i + 1).trim();
}
