/** ISO 8601 durations as Tape REST `diskLifetime` uses them (`PT1H`, `P1DT12H`, `PT30M`); months/years refused. */
export function parseIsoDurationMs(text: string): number | undefined {
  const m = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(text.trim());
  if (!m || text.trim() === 'P' || text.trim().endsWith('T')) return undefined;
  const [, w, d, h, min, s] = m;
  const sec = Number(w ?? 0) * 604800 + Number(d ?? 0) * 86400 + Number(h ?? 0) * 3600 + Number(min ?? 0) * 60 + Number(s ?? 0);
  return Number.isFinite(sec) ? Math.round(sec * 1000) : undefined;
}
