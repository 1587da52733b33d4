/**
 * Nightly exports end to end through a real port (gateway, its export ticks, a worker pool, real Redis): file://
 * local areas as source and destinations. A run selects exactly the files new since the last successful run; a file
 * exported intact is not sent again (the ledger), also when the window is widened; a run whose files fail leaves
 * them to the next run; the report's counts match the jobs it submitted; /metrics counts the runs.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunReport } from '../../services/exports/export-store.js';
import { makeRandomFiles, sameContent, sleep, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { testTls } from '../support/tls.js';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { fileURLToPath } from 'node:url';

const CHROMIUM = process.env['CARGOPORT_CHROMIUM'] ?? '/usr/bin/chromium';
const noBrowser = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM}`;
declare const document: { querySelector(s: string): { textContent: string | null } | null };
const cli = join(fileURLToPath(import.meta.url), '../../../../bin/cargoport.js');

describe('port: nightly exports', () => {
  let h: Harness;
  const root = tempDir('port-exports');
  const src = join(root, 'buffer');
  const dstA = join(root, 'site-a');
  const dstB = join(root, 'site-b');

  before(async () => {
    h = await startHarness({ exports: { pollMs: 100 } });
  });
  after(async () => {
    await h.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function runNow(name: string): Promise<RunReport> {
    const r = await h.api<{ runId: string }>('POST', `/api/v1/exports/${name}/run`);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const end = Date.now() + 60_000;
    for (;;) {
      const g = await h.api<RunReport>('GET', `/api/v1/exports/${name}/runs/${r.body.runId}`);
      if (g.status === 200 && g.body.state !== 'running') return g.body;
      if (Date.now() > end) throw new Error(`run ${r.body.runId} did not end: ${JSON.stringify(g.body)}`);
      await sleep(100);
    }
  }

  /** The report's counts against the jobs it names, read from the jobs API. */
  async function assertReportMatchesJobs(r: RunReport): Promise<void> {
    let finished = 0;
    let failed = 0;
    let files = 0;
    let bytes = 0;
    for (const j of r.jobs) {
      const job = await h.api<{ files: number; counts: Record<string, number>; bytesDone: number }>('GET', `/api/v1/jobs/${j.jobId}`);
      files += job.body.files;
      finished += job.body.counts['FINISHED'] ?? 0;
      failed += job.body.counts['FAILED'] ?? 0;
      bytes += job.body.bytesDone;
      assert.equal(job.body.files, j.files);
    }
    assert.equal(r.files.submitted, files);
    assert.equal(r.files.finished, finished);
    assert.equal(r.files.failed, failed);
    assert.equal(r.bytes, bytes);
  }

  test('first run exports everything to both sites; the next only the new files; a widened window resends nothing', async () => {
    const first = makeRandomFiles(join(src, 'night1'), 3, 10_000, 200_000);
    const def = {
      name: 'lsst-nightly', description: 'buffer to two sites',
      schedule: { cron: '0 1 * * *', timezone: 'America/Santiago' },
      selection: { dir: src, glob: '**/f*' },
      destinations: [`file://${dstA}/{path}`, `file://${dstB}/raw`],
      params: { priority: 4, checksum: 'adler32', deadline: '06:00', existing: 'overwrite' },
    };
    const created = await h.api<Record<string, unknown>>('POST', '/api/v1/exports', def);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.ok(typeof created.body['nextRunAt'] === 'string', 'the BullMQ scheduler knows the next tick');
    assert.equal((await h.api('POST', '/api/v1/exports', def)).status, 409);

    const r1 = await runNow('lsst-nightly');
    assert.equal(r1.state, 'succeeded', JSON.stringify(r1));
    assert.deepEqual(r1.files, { selected: 3, alreadyExported: 0, submitted: 6, finished: 6, failed: 0, canceled: 0 });
    assert.equal(r1.jobs.length, 2);
    assert.ok(r1.deadline && r1.deadlineMissed !== true);
    await assertReportMatchesJobs(r1);
    for (const f of first) {
      assert.ok(sameContent(join(src, 'night1', f.name), join(dstA, 'night1', f.name)));
      assert.ok(sameContent(join(src, 'night1', f.name), join(dstB, 'raw', 'night1', f.name)));
    }

    const second = makeRandomFiles(join(src, 'night2'), 2, 1000, 5000, 'f2-');
    const r2 = await runNow('lsst-nightly');
    assert.equal(r2.state, 'succeeded', JSON.stringify(r2));
    assert.equal(r2.files.selected, 2, 'only the files modified since the last successful run');
    assert.equal(r2.files.submitted, 4);
    await assertReportMatchesJobs(r2);
    for (const f of second) assert.ok(sameContent(join(src, 'night2', f.name), join(dstA, 'night2', f.name)));

    // The whole buffer in the window: everything was exported intact already, nothing is submitted.
    const widened = { ...def, selection: { ...def.selection, window: 'all' } };
    assert.equal((await h.api('PUT', '/api/v1/exports/lsst-nightly', widened)).status, 200);
    const r3 = await runNow('lsst-nightly');
    assert.equal(r3.state, 'succeeded');
    assert.deepEqual(r3.files, { selected: 5, alreadyExported: 10, submitted: 0, finished: 0, failed: 0, canceled: 0 });
    assert.equal(r3.jobs.length, 0);

    // A file rewritten (new size and mtime) is exported again, to both sites; the others are not.
    const changed = join(src, 'night1', first[0]!.name);
    writeFileSync(changed, 'rewritten');
    utimesSync(changed, new Date(), new Date(Date.now() + 5000));
    const r4 = await runNow('lsst-nightly');
    assert.equal(r4.files.submitted, 2);
    assert.equal(readFileSync(join(dstA, 'night1', first[0]!.name), 'utf8'), 'rewritten');

    const hist = await h.api<{ runs: RunReport[] }>('GET', '/api/v1/exports/lsst-nightly/runs');
    assert.deepEqual(hist.body.runs.map((r) => r.runId), [r4.runId, r3.runId, r2.runId, r1.runId]);
    const metrics = await h.api<string>('GET', '/metrics');
    assert.match(metrics.body, /cargoport_export_runs_total\{state="succeeded"\} 4/);
  });

  test('a run whose files fail leaves them to the next run, with reasons in the report', async () => {
    const dir = join(root, 'buffer2');
    const files = makeRandomFiles(dir, 2, 1000, 2000);
    const blocked = join(root, 'site-c');
    // The destination's parent is a regular file: every transfer fails.
    writeFileSync(blocked, 'not a directory');
    const def = { name: 'to-c', schedule: { everyMinutes: 1440 }, selection: { dir }, destinations: [`file://${blocked}/in`], params: { retries: 0 } };
    assert.equal((await h.api('POST', '/api/v1/exports', def)).status, 201);
    const r1 = await runNow('to-c');
    assert.equal(r1.state, 'failed');
    assert.equal(r1.files.failed, 2);
    assert.equal(r1.failures.length, 2);
    assert.ok(r1.failures.every((f) => f.code.startsWith('CARGO_ERR_') && f.message && f.path), JSON.stringify(r1.failures));
    await assertReportMatchesJobs(r1);
    rmSync(blocked);
    mkdirSync(blocked);
    const r2 = await runNow('to-c');
    assert.equal(r2.state, 'succeeded', JSON.stringify(r2));
    assert.equal(r2.files.selected, 2, 'the failed run did not move the window');
    assert.equal(r2.files.finished, 2);
    for (const f of files) assert.ok(sameContent(join(dir, f.name), join(blocked, 'in', f.name)));
    const metrics = await h.api<string>('GET', '/metrics');
    assert.match(metrics.body, /cargoport_export_runs_total\{state="failed"\} 1/);
  });

  test('the dashboard\'s exports panel shows the last report; its pause button (confirmed) pauses the export', { skip: noBrowser, timeout: 120_000 }, async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    try {
      const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
      const dialogs: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.accept();
      });
      await page.goto(`${h.gateway.url}/ui`);
      await page.waitForSelector('#exports tr[data-export="to-c"]');
      const row = await page.evaluate(() => document.querySelector('#exports tr[data-export="lsst-nightly"]')?.textContent ?? '');
      assert.match(row, /0 1 \* \* \* \(America\/Santiago\)/);
      assert.match(row, /succeeded \(manual\)/);
      await page.click('#exports tr[data-export="to-c"] button:text("pause")');
      await page.waitForFunction(() => /paused/.test(document.querySelector('#exports tr[data-export="to-c"]')?.textContent ?? ''));
      assert.deepEqual(dialogs, ['pause export to-c?']);
      assert.equal((await h.api<{ paused: boolean }>('GET', '/api/v1/exports/to-c')).body.paused, true);
      await page.click('#exports tr[data-export="lsst-nightly"] td.clickable');
      await page.waitForSelector('#export-runs table tbody tr');
    } finally {
      await browser.close();
    }
    assert.equal((await h.api('POST', '/api/v1/exports/to-c/resume')).status, 200);
  });

  test('pause removes the schedule, resume puts it back; delete forgets the export', async () => {
    const p = await h.api<Record<string, unknown>>('POST', '/api/v1/exports/to-c/pause');
    assert.equal(p.body['paused'], true);
    assert.equal(p.body['nextRunAt'], undefined);
    const r = await h.api<Record<string, unknown>>('POST', '/api/v1/exports/to-c/resume');
    assert.equal(r.body['paused'], false);
    assert.ok(typeof r.body['nextRunAt'] === 'string');
    const list = await h.api<{ exports: Array<{ definition: { name: string } }> }>('GET', '/api/v1/exports');
    assert.deepEqual(list.body.exports.map((e) => e.definition.name), ['lsst-nightly', 'to-c']);
    const bad = await h.api<{ code: string; field: string }>('POST', '/api/v1/exports', { name: 'bad', schedule: { cron: '0 25 * * *' }, selection: { dir: root }, destinations: ['file:///x'] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'CARGO_ERR_INVALID_EXPORT');
    assert.equal(bad.body.field, 'schedule.cron');
    assert.equal((await h.api('DELETE', '/api/v1/exports/to-c')).status, 204);
    assert.equal((await h.api('GET', '/api/v1/exports/to-c')).status, 404);
  });

  test('the CLI creates an export from a YAML file, runs it now, shows it and its history', async () => {
    const dir = join(root, 'buffer3');
    makeRandomFiles(join(dir, 'a'), 2, 500, 900);
    const cfgFile = join(root, 'cli.yaml');
    writeFileSync(cfgFile, `dataDir: ${root}\ngateway:\n  tlsCert: ${testTls().certPath}\n  tlsKey: ${testTls().keyPath}\n`);
    const defFile = join(root, 'nightly.yaml');
    writeFileSync(defFile, [
      'name: cli-nightly',
      'schedule: { cron: "30 2 * * *", timezone: Europe/Paris }',
      `selection: { dir: ${dir}, glob: "a/*" }`,
      'destinations:',
      `  - file://${root}/site-d/{date}`,
      'params: { deadline: "06:00" }',
      '',
    ].join('\n'));
    const run = (...args: string[]) => new Promise<{ code: number; out: string; err: string }>((done) => {
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_') && !k.startsWith('BEARER_TOKEN'))) as Record<string, string>;
      execFile(process.execPath, [cli, '--config', cfgFile, ...args, '--url', h.gateway.url], { env: { ...env, XDG_RUNTIME_DIR: root } },
        (e, out, err) => done({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err }));
    });
    const c = await run('exports', 'create', defFile);
    assert.equal(c.code, 0, c.err);
    assert.match(c.out, /created cli-nightly .* cron "30 2 \* \* \*" Europe\/Paris/);
    const r = await run('exports', 'run-now', 'cli-nightly', '--json');
    assert.equal(r.code, 0, r.err);
    const runId = (JSON.parse(r.out) as { runId: string }).runId;
    const end = Date.now() + 60_000;
    while ((await h.api<RunReport>('GET', `/api/v1/exports/cli-nightly/runs/${runId}`)).body.state !== 'succeeded') {
      if (Date.now() > end) throw new Error('CLI-started run did not succeed');
      await sleep(100);
    }
    const hist = await run('exports', 'history', 'cli-nightly');
    assert.equal(hist.code, 0, hist.err);
    assert.match(hist.out, /manual\s+succeeded 2\/2 files \(2 selected, 0 already exported, 0 failed\)/);
    const show = await run('exports', 'show', 'cli-nightly');
    assert.match(show.out, /destination: file:\/\/.*site-d\/\{date\}/);
    assert.match(show.out, /job [0-9a-f-]{36} FINISHED 2 files/);
    const list = await run('exports', 'list');
    assert.match(list.out, /cli-nightly/);
    assert.equal((await run('exports', 'pause', 'cli-nightly')).code, 0);
    const bad = await run('exports', 'show', 'nope');
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /CARGO_ERR_EXPORT_NOT_FOUND|no export named/);
  });
});
