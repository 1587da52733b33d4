/**
 * How every connector of the engine (undici's, the bulk receive sessions', the HTTP/1.1 uploader's) reaches an
 * endpoint: happy eyeballs (RFC 8305) across every A/AAAA answer, so an address that does not answer — a broken
 * IPv6 path, a dead host among several — costs 250 ms before the next one is tried, not the connect timeout.
 */
import type { LookupFunction } from 'node:net';

export const HAPPY_EYEBALLS_ATTEMPT_MS = 250;

export function addressOptions(lookup?: LookupFunction): { autoSelectFamily: true; autoSelectFamilyAttemptTimeout: number; lookup?: LookupFunction } {
  return { autoSelectFamily: true, autoSelectFamilyAttemptTimeout: HAPPY_EYEBALLS_ATTEMPT_MS, ...(lookup ? { lookup } : {}) };
}
