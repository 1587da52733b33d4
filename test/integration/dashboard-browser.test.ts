/**
 * The operator's dashboard in a real browser (Debian's chromium driven by playwright-core) against a real port
 * (gateway over TLS + HTTP/2, workers, Redis): the page loads over HTTP/2 from the gateway alone, shows a running
 * job's bytes rising, pauses the port with its button (after the confirmation) and shows the bytes standing still,
 * resumes and sees the job finish; the throughput plot is fed by /events; drill-down to files and attempts; the bearer token from the page's field is sent.
 * Afterwards /metrics counts the bytes, files and attempts of the job per link.
 * CARGOPORT_DASHBOARD_SCREENSHOT=FILE saves a screenshot taken during the transfer (the README's).
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { makeRandomFiles, tempDir } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';

const MiB = 1024 * 1024;

// What the functions evaluated in the page use of the DOM (the project compiles without the DOM library).
interface Dataset { dataset: Record<string, string | undefined> }
declare const document: { body: Dataset; querySelector<T = Dataset>(selector: string): T | null };
const CHROMIUM = process.env['CARGOPORT_CHROMIUM'] ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (apt-get install chromium)`;

let h: Harness;
let src: H2FileServer;
let browser: Browser;
const dirs: string[] = [];

before(async () => {
  if (skip) return;
  h = await startHarness({ workers: { concurrency: 4 }, scheduler: { linkMaxActive: 4 } });
  const root = tempDir('ui-src');
  dirs.push(root);
  src = await startH2FileServer({ root });
  src.faults.bytesPerSec = 1 * MiB; // per response: each 12 MiB file takes ~12 s, long enough to watch and pause (at 2 MiB/s a quiet machine sometimes finished the job before the pause)
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--ignore-certificate-errors'],
  });
});
after(async () => {
  if (skip) return;
  await browser?.close();
  await h?.close();
  await src?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Waits for the page's next `n` completed refreshes (the page counts them), not for a time. */
async function refreshes(page: Page, n: number): Promise<void> {
  const start = Number(await page.evaluate(() => document.body.dataset['refreshes'] ?? '0'));
  await page.waitForFunction((target) => Number(document.body.dataset['refreshes'] ?? '0') >= target, start + n, { timeout: 60_000 });
}
const shownBytes = (page: Page, jobId: string) => page.evaluate((id) => Number(document.querySelector(`#jobs tr[data-job="${id}"]`)?.dataset['bytesDone'] ?? -1), jobId);

test('dashboard over HTTP/2: progress rises, the pause button holds the bytes, resume finishes the job', { skip, timeout: 180_000 }, async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const foreign: string[] = [];
  const authorizations = new Set<string>();
  page.on('request', (r) => {
    if (!r.url().startsWith(h.gateway.url)) foreign.push(r.url());
    if (r.url().includes('/api/v1/')) authorizations.add(r.headers()['authorization'] ?? '');
  });
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.accept();
  });

  const res = await page.goto(`${h.gateway.url}/`);
  assert.equal(res?.status(), 200);
  assert.equal(new URL(page.url()).pathname, '/ui', '/ leads to the dashboard');
  assert.equal(await page.evaluate(() => (performance.getEntriesByType('navigation' as never)[0] as unknown as { nextHopProtocol: string }).nextHopProtocol), 'h2');
  await page.waitForSelector('#conn.ok');
  // A token typed in the page is sent with every request; this one no issuer signed, so the gateway refuses it and
  // the page says so. Without it the (open) test port answers again.
  await page.fill('#token', 'dashboard-token');
  await page.dispatchEvent('#token', 'change');
  await page.waitForSelector('#conn.bad');
  assert.ok(authorizations.has('Bearer dashboard-token'), 'the token from the page is sent');
  assert.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('cargoport.token')), 'dashboard-token');
  await page.fill('#token', '');
  await page.dispatchEvent('#token', 'change');
  await page.waitForSelector('#conn.ok');

  const files = makeRandomFiles(join(src.root, 'ui'), 4, 12 * MiB, 12 * MiB);
  const dst = tempDir('ui-dst');
  dirs.push(dst);
  const sub = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
    files: files.map((f) => ({ source: src.url(`/ui/${f.name}`), destination: `file://${dst}/${f.name}`, size: f.size, checksum: `adler32:${f.adler32}` })),
  });
  assert.equal(sub.status, 201);
  const jobId = sub.body.jobId;

  // Progress rises on the page.
  await page.waitForFunction((id) => Number(document.querySelector(`#jobs tr[data-job="${id}"]`)?.dataset['bytesDone'] ?? 0) > 2 * 1024 * 1024, jobId, { timeout: 60_000 });
  const first = await shownBytes(page, jobId);
  await page.waitForFunction(([id, b]) => Number(document.querySelector(`#jobs tr[data-job="${id}"]`)?.dataset['bytesDone'] ?? 0) > (b as number), [jobId, first] as const, { timeout: 60_000 });
  await page.waitForSelector('#transfers tr[data-transfer]');
  // The plot is fed by /events' throughput samples: some of them show bytes moving.
  await page.waitForFunction(() => Number(document.body.dataset['movingSamples'] ?? '0') >= 2, undefined, { timeout: 60_000 });
  if (process.env['CARGOPORT_DASHBOARD_SCREENSHOT']) {
    await refreshes(page, 3); // a few points on the plot and per-transfer rates
    await page.screenshot({ path: process.env['CARGOPORT_DASHBOARD_SCREENSHOT'], fullPage: true });
  }

  // Pause the port with the button (scope port is the default), confirmed.
  await page.click('#admin-form button[data-op="pause"]');
  assert.deepEqual(dialogs, ['pause port?']);
  await page.waitForSelector('#scopes tr[data-scope="port:"] td.state-paused');
  // Bytes written when the gate closed and the last progress flush may still land: let two refreshes pass, then
  // the figure must stand still over three more.
  await refreshes(page, 2);
  const held = await shownBytes(page, jobId);
  for (let i = 0; i < 3; i++) {
    await refreshes(page, 1);
    assert.equal(await shownBytes(page, jobId), held, 'no byte moves while paused');
  }
  assert.ok(held < files.reduce((a, f) => a + f.size, 0), 'paused mid-transfer');
  const counts = (await h.api<{ counts: Record<string, number> }>('GET', `/api/v1/jobs/${jobId}`)).body.counts;
  assert.equal(counts['ACTIVE'], 4, 'held, not aborted');

  await page.click('#admin-form button[data-op="resume"]');
  await page.waitForSelector('#scopes tr[data-scope="port:"] td.state-running');
  await page.waitForSelector(`#jobs tr[data-job="${jobId}"][data-state="FINISHED"]`, { timeout: 120_000 });
  assert.equal(await shownBytes(page, jobId), files.reduce((a, f) => a + f.size, 0));

  // Drill-down: the job's files, then one file's attempts (one: the pause held it, nothing was re-sent).
  await page.click(`#jobs tr[data-job="${jobId}"]`);
  await page.waitForSelector('#files tr[data-file="0"]');
  assert.equal(await page.locator('#files tbody tr').count(), 4);
  await page.click('#files tr[data-file="0"]');
  await page.waitForSelector('#attempt-table tbody tr');
  assert.equal(await page.locator('#attempt-table tbody tr').count(), 1);
  assert.match(await page.locator('#attempt-table tbody tr').innerText(), /ok/);

  assert.deepEqual(foreign, [], 'no request to another host');
  await context.close();

  // The counters behind /metrics saw the same job.
  const metrics = (await h.api<string>('GET', '/metrics')).body;
  const link = `127.0.0.1:${new URL(src.url('/')).port}>local`;
  const value = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
  assert.equal(value(new RegExp(`cargoport_files_finished_total\\{link="${link.replace(/[.>]/g, '\\$&')}"\\} (\\d+)`)), 4, metrics.slice(0, 3000));
  assert.ok(value(/cargoport_bytes_moved_total\{link=""\} (\d+)/) >= 48 * MiB);
  assert.equal(value(new RegExp(`cargoport_attempts_total\\{outcome="ok",link="${link.replace(/[.>]/g, '\\$&')}"\\} (\\d+)`)), 4);
});
