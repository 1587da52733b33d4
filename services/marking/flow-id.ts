/**
 * SciTags flow identifiers and IPv6 flow labels (specs/scitags.md §2, §3).
 *
 * flowId = experiment << 6 | activity, valid in [65, 65535]: 10 experiment bits, 6 activity bits.
 * Flow label (draft-cc-v6ops-wlcg-flow-label-marking-03): the 9-bit experiment bit-reversed in bits 17..9,
 * the activity in bits 7..2, 5 entropy bits (19, 18, 8, 1, 0) chosen once per flow. Entropy bit 19 (0x80000) is
 * kept clear: with net.ipv6.flowlabel_state_ranges = 1 (the kernel default) the label manager refuses any label
 * with it set (ERANGE), so a user-space marker has 4 entropy bits.
 */
export const MIN_FLOW_ID = 65;
export const MAX_FLOW_ID = 65535;

export interface FlowTag {
  experiment: number;
  activity: number;
}

export function flowIdOf(t: FlowTag): number {
  return (t.experiment << 6) | t.activity;
}

export function tagOfFlowId(flowId: number): FlowTag {
  return { experiment: flowId >> 6, activity: flowId & 0x3f };
}

export function validFlowId(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_FLOW_ID && n <= MAX_FLOW_ID;
}

/**
 * An incoming `SciTag` / `TransferHeaderSciTag` / `scitag.flow` value. Anything but a plain decimal integer in
 * [65, 65535] is invalid and marks as experiment 0 / activity 0, as the spec says (StoRM, XRootD); unlike XRootD's
 * stoi we do not accept a numeric prefix such as `65abc`.
 */
export function parseIncomingFlowId(raw: string | undefined): FlowTag | undefined {
  if (raw === undefined) return undefined;
  const s = raw.trim();
  const n = /^\d{1,6}$/.test(s) ? Number(s) : NaN;
  return validFlowId(n) ? tagOfFlowId(n) : { experiment: 0, activity: 0 };
}

function reverse9(v: number): number {
  let r = 0;
  for (let i = 0; i < 9; i++) if (v & (1 << i)) r |= 1 << (8 - i);
  return r;
}

/** Entropy positions usable from user space (0x80000 excluded, see above). */
export const ENTROPY_MASK = 0x40103;
export const SEMANTIC_MASK = 0x3fefc;

/**
 * The 20-bit label of a flow. `entropy` is any number; its bits under ENTROPY_MASK are used (draw it once per
 * flow). Experiments above 511 do not fit the 9 label bits: their low 9 bits are used, as flowd-go does.
 */
export function flowLabelOf(t: FlowTag, entropy = 0): number {
  return ((reverse9(t.experiment & 0x1ff) << 9) | ((t.activity & 0x3f) << 2) | (entropy & ENTROPY_MASK)) >>> 0;
}

export function tagOfFlowLabel(label: number): FlowTag {
  return { experiment: reverse9((label >> 9) & 0x1ff), activity: (label >> 2) & 0x3f };
}

/** A fresh entropy value for one flow. */
export function flowEntropy(): number {
  return Math.floor(Math.random() * 0x100000) & ENTROPY_MASK;
}
