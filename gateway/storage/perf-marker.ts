/**
 * HTTP-TPC performance markers, in the exact layout davix/gfal2 parse (wlcg.md §3.2): one block per period,
 * a single space after each colon, then a terminal `success: Created` or `failure: <reason>` line.
 */
export function perfMarker(bytes: number, nowMs = Date.now(), remoteConnections?: string): string {
  return (
    'Perf Marker\n' +
    `Timestamp: ${Math.floor(nowMs / 1000)}\n` +
    'Stripe Index: 0\n' +
    `Stripe Bytes Transferred: ${bytes}\n` +
    'Total Stripe Count: 1\n' +
    (remoteConnections ? `RemoteConnections: ${remoteConnections}\n` : '') +
    'End\n'
  );
}

export const SUCCESS_LINE = 'success: Created\n';

/** One line, no CR/LF inside (a reason spanning lines would end the marker stream early for the client). */
export function failureLine(reason: string): string {
  return `failure: ${reason.replace(/[\r\n]+/g, ' ').trim() || 'unknown error'}\n`;
}

/** `tcp:<ip>:<port>` (IPv6 bracketed), the RemoteConnections value davix feeds to FTS IPv4/IPv6 monitoring. */
export function remoteConnection(ip: string, port: number): string {
  return ip.includes(':') ? `tcp:[${ip}]:${port}` : `tcp:${ip}:${port}`;
}
