/** Export definitions: the checks a schema cannot make, templates in the export's time zone, deadlines across DST. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderTemplate } from '../../services/exports/date-template.js';
import { checkDefinition, deadlineAfter, destinationUrl, type ExportDefinition } from '../../services/exports/export-definition.js';
import { selectionRoot } from '../../services/exports/file-selection.js';

const base: ExportDefinition = { name: 'n', schedule: { cron: '0 1 * * *', timezone: 'Europe/Zurich' }, selection: { dir: '/buf' }, destinations: ['https://dst.example/in/{path}'] };
const fieldOf = (d: ExportDefinition) => {
  try {
    checkDefinition(d);
    return 'ok';
  } catch (e) {
    return `${(e as { code: string }).code} ${(e as { field: string }).field}`;
  }
};

test('invalid definitions are refused naming the field', () => {
  assert.equal(fieldOf(base), 'ok');
  assert.equal(fieldOf({ ...base, schedule: { cron: '0 25 * * *' } }), 'CARGO_ERR_INVALID_EXPORT schedule.cron');
  assert.equal(fieldOf({ ...base, schedule: { cron: '0 1 * * *', timezone: 'Mars/Olympus' } }), 'CARGO_ERR_INVALID_EXPORT schedule.timezone');
  assert.equal(fieldOf({ ...base, selection: { dir: '/a', manifestUrl: 'https://m.example/x' } }), 'CARGO_ERR_INVALID_EXPORT selection');
  assert.equal(fieldOf({ ...base, selection: { dir: '/a', subdir: '../up' } }), 'CARGO_ERR_INVALID_EXPORT selection.subdir');
  assert.equal(fieldOf({ ...base, selection: { dir: '/a', subdir: '{path}' } }), 'CARGO_ERR_INVALID_EXPORT selection.subdir');
  assert.equal(fieldOf({ ...base, destinations: ['https://d.example/{tomorrow}'] }), 'CARGO_ERR_INVALID_EXPORT destinations[0]');
  assert.equal(fieldOf({ ...base, destinations: ['ftp://d.example/x'] }), 'CARGO_ERR_INVALID_EXPORT destinations[0]');
  assert.equal(fieldOf({ ...base, destinations: ['https://d.example/x', 'https://d.example/x'] }), 'CARGO_ERR_INVALID_EXPORT destinations[1]');
});

test('{date} and {yesterday} are days in the export\'s time zone; {path} is encoded per segment and appended when absent', () => {
  // 2026-03-01T02:30Z is still February 28 in Santiago (UTC-3).
  const at = Date.parse('2026-03-01T02:30:00Z');
  assert.equal(renderTemplate('{date}/{yesterday:YYYY/MM/DD}', { name: 'n', at, timeZone: 'America/Santiago' }), '2026-02-28/2026/02/27');
  assert.equal(renderTemplate('{date}', { name: 'n', at, timeZone: 'UTC' }), '2026-03-01');
  assert.equal(destinationUrl('https://d.example/{yesterday}/{path}', { name: 'n', at, timeZone: 'UTC', path: 'a b/c#1' }), 'https://d.example/2026-02-28/a%20b/c%231');
  assert.equal(destinationUrl('file:///out/', { name: 'n', at, timeZone: 'UTC', path: 'x/y' }), 'file:///out/x/y');
});

test('the deadline is the first HH:MM local after the run was due, across the DST change', () => {
  // Due 01:00 CET on the night of the spring change: 06:00 is then CEST (04:00Z), not 05:00Z.
  assert.equal(new Date(deadlineAfter('06:00', Date.parse('2026-03-29T00:00:00Z'), 'Europe/Zurich')!).toISOString(), '2026-03-29T04:00:00.000Z');
  assert.equal(new Date(deadlineAfter('06:00', Date.parse('2026-03-28T00:00:00Z'), 'Europe/Zurich')!).toISOString(), '2026-03-28T05:00:00.000Z');
  assert.equal(deadlineAfter(undefined, 0, 'UTC'), undefined);
});

test('a namespace path maps through the deepest local area; directories outside every area are refused', () => {
  const areas = [{ dir: '/srv/data', path: '/' }, { dir: '/mnt/buffer', path: '/lsst/buffer' }];
  assert.equal(selectionRoot({ path: '/lsst/buffer/raw' }, areas, false), '/mnt/buffer/raw');
  assert.equal(selectionRoot({ path: '/other' }, areas, false), '/srv/data/other');
  assert.throws(() => selectionRoot({ dir: '/etc' }, areas, false), /CARGO_ERR_INVALID_EXPORT|no local area/);
  assert.equal(selectionRoot({ dir: '/etc' }, areas, true), '/etc');
  assert.throws(() => selectionRoot({ path: '/x' }, [{ dir: '/d', path: '/y' }], false), /no local area/);
});
