/**
 * One error catalogue (errors/catalogue.ts), kept in step with the source and the README, as fastify's
 * lib/errors.js is with its docs: every `CARGO_ERR_*` the source names is in the catalogue, every catalogue code is
 * used and documented, the README's table is the catalogue's rendering, and config, services, gateway, workers and
 * bin make no error without a code (`new Error(…)`) except where the allow-list below says why.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CargoError } from '../../errors/cargo-error.js';
import { errorCatalogue, errorSpec, isErrorCode } from '../../errors/catalogue.js';
import { catalogueTable, readmeErrorTable } from '../../errors/catalogue-markdown.js';
import { problemFor, problemOf } from '../../gateway/problem.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SOURCE_ROOTS = ['errors', 'config', 'services', 'gateway', 'workers', 'bin'];
/** Where an error must carry a code when it is made. */
const CODED_ROOTS = ['config', 'services', 'gateway', 'workers', 'bin'];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|lua|mjs|js)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const files = SOURCE_ROOTS.flatMap((d) => sourceFiles(join(root, d))).map((f) => relative(root, f));
const text = new Map(files.map((f) => [f, readFileSync(join(root, f), 'utf8')]));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const CODE = /\bCARGO_ERR_[A-Z0-9_]*[A-Z0-9]\b/g;

test('every CARGO_ERR_* code the source names is in the catalogue', () => {
  const unknown: string[] = [];
  for (const [f, src] of text) {
    for (const m of src.matchAll(CODE)) if (!isErrorCode(m[0])) unknown.push(`${f}: ${m[0]}`);
  }
  assert.deepEqual(unknown, [], 'add these codes to errors/catalogue.ts (then `npm run errors:doc`)');
});

test('every catalogue code is used somewhere outside the catalogue', () => {
  const used = new Set<string>();
  for (const [f, src] of text) if (f !== join('errors', 'catalogue.ts')) for (const m of src.matchAll(CODE)) used.add(m[0]);
  assert.deepEqual(Object.keys(errorCatalogue).filter((c) => !used.has(c)), [], 'a code nothing answers or records');
});

test("the README's error table is the catalogue's (run `npm run errors:doc` after changing the catalogue)", () => {
  const table = readmeErrorTable(readme);
  assert.ok(table !== undefined, 'README.md lacks the errors:begin / errors:end markers');
  assert.equal(table, catalogueTable());
  for (const code of Object.keys(errorCatalogue)) assert.ok(table.includes(`| \`${code}\` |`), `README lacks ${code}`);
  const stale = [...new Set(readme.match(CODE) ?? [])].filter((c) => !isErrorCode(c));
  assert.deepEqual(stale, [], 'the README names codes the catalogue does not have');
});

test('the catalogue is sorted by code and each entry is a plausible status, a flag and one line of meaning', () => {
  const codes = Object.keys(errorCatalogue);
  assert.deepEqual(codes, [...codes].sort());
  for (const [code, spec] of Object.entries(errorCatalogue)) {
    assert.ok(spec.status >= 400 && spec.status < 600, `${code}: status ${spec.status}`);
    assert.equal(typeof spec.retryable, 'boolean', code);
    assert.ok(spec.meaning.length > 10 && !spec.meaning.includes('\n'), `${code}: meaning`);
  }
});

test('CargoError takes status and retryability from the catalogue unless the instance says otherwise', () => {
  const e = new CargoError('CARGO_ERR_NO_SPACE', 'full');
  assert.equal(e.httpStatus, 507);
  assert.equal(e.retryable, true);
  const o = new CargoError('CARGO_ERR_HTTP_4XX', 'remote 429', { retryable: true, httpStatus: 502 });
  assert.equal(o.retryable, true);
  assert.equal(errorSpec('CARGO_ERR_NOPE'), undefined);
  assert.equal(isErrorCode('toString'), false);
});

test('problem+json: one shape for domain errors, direct answers and foreign errors; a foreign 5xx says nothing', () => {
  const keys = ['code', 'detail', 'field', 'status', 'title', 'type'];
  const domain = problemFor(new CargoError('CARGO_ERR_BAD_URL', 'files[0].source is not a URL', { field: 'files[0].source' }));
  assert.deepEqual(Object.keys(domain).sort(), keys);
  assert.deepEqual(domain, {
    type: 'urn:cargoport:error:CARGO_ERR_BAD_URL', title: 'Bad Request', status: 400,
    detail: 'files[0].source is not a URL', code: 'CARGO_ERR_BAD_URL', field: 'files[0].source',
  });
  const direct = problemOf({ code: 'CARGO_ERR_BAD_RANGE', detail: 'range not satisfiable for /a', field: 'Range' });
  assert.deepEqual(Object.keys(direct).sort(), keys);
  assert.equal(direct.status, 416);
  assert.equal(direct.title, 'Range Not Satisfiable');
  const foreign = problemFor(Object.assign(new Error('secret internals'), { statusCode: 503 }));
  assert.deepEqual(foreign, {
    type: 'urn:cargoport:error:CARGO_ERR_INTERNAL', title: 'Internal Server Error', status: 500,
    detail: 'internal error (logged on the server)', code: 'CARGO_ERR_INTERNAL',
  });
  const fastify = problemFor(Object.assign(new Error('Body cannot be empty'), { statusCode: 400, code: 'FST_ERR_CTP_EMPTY_JSON_BODY' }));
  assert.equal(fastify.code, 'CARGO_ERR_BAD_JSON');
  const other = problemFor(Object.assign(new Error('URI malformed'), { statusCode: 400, code: 'FST_ERR_BAD_URL' }));
  assert.equal(other.code, 'CARGO_ERR_BAD_REQUEST');
  assert.ok(isErrorCode(other.code));
});

/**
 * Errors made without a code in config, services, gateway, workers and bin, by file name (so a file moving between folders
 * keeps its entry) and a piece of the line. Each says why the error needs no code of its own. An entry that no longer
 * matches anything fails the test, so the list cannot outlive its reasons.
 */
const UNCODED_ALLOWED: ReadonlyArray<{ file: string; match: string; why: string }> = [
  // Errors shaped as undici's or Node's own (code UND_ERR_*_TIMEOUT, ECONNRESET) for the paths that do not use undici,
  // so that classifyError gives them the code and the URL it gives undici's (CARGO_ERR_TIMEOUT, CARGO_ERR_NETWORK).
  { file: 'connector.ts', match: "{ code: 'UND_ERR_CONNECT_TIMEOUT' }", why: 'classified as CARGO_ERR_TIMEOUT' },
  { file: 'connector.ts', match: "{ code: 'ECONNRESET' }", why: 'classified as CARGO_ERR_NETWORK' },
  { file: 'http1-get.ts', match: 'new Error(`no response within', why: 'classified as CARGO_ERR_TIMEOUT' },
  { file: 'http1-get.ts', match: 'new Error(`no body bytes for', why: 'classified as CARGO_ERR_TIMEOUT on the spot' },
  { file: 'http1-upload.ts', match: 'new Error(`no response within', why: 'classified as CARGO_ERR_TIMEOUT' },
  { file: 'file-pump.ts', match: "new Error('source closed before its end')", why: 'a source stream that closed early; the caller classifies it with the source URL (CARGO_ERR_NETWORK)' },
  { file: 'native-flowlabel.ts', match: "{ code, errno: -errno, syscall: 'connect' }", why: "Node's own connect-error shape (errno name as code), classified by the connectors like a Node socket's" },
  { file: 'gate-stage.ts', match: "name: 'AbortError', code: 'ABORT_ERR'", why: "Node's own abort shape, which stream pipelines and stream-stage.ts recognise; the engine reports the abort as CARGO_ERR_ABORTED" },
  { file: 'worker-child.ts', match: 'new Error(`test crash trigger', why: 'test-only (CARGOPORT_TEST_CRASH_SOURCE): an uncaught exception that crashes the worker child, as a bug would; never caught or reported as an error' },
  // Parser signals caught inside their module and turned into a protocol answer or a coded error there.
  { file: 'bulk-session.ts', match: 'class NotHttp2Error extends Error', why: 'control flow: http-requests.ts falls back to undici for an origin without HTTP/2' },
  { file: 'hpack.ts', match: 'class HpackError extends Error', why: 'caught by bulk-session.ts: a COMPRESSION_ERROR / ENHANCE_YOUR_CALM connection error (CARGO_ERR_PEER_PROTOCOL)' },
  { file: 'hpack-huffman.ts', match: 'class HuffmanError extends Error', why: 'caught by hpack.ts and reported as an HpackError' },
  { file: 'response-fields.ts', match: 'class MalformedResponse extends Error', why: 'caught by bulk-session.ts: a stream error of that response (CARGO_ERR_PEER_PROTOCOL)' },
  { file: 'structured-field.ts', match: 'class SfParseError extends Error', why: 'caught by digest-header.ts: an unparsable Repr-Digest counts as none (RFC 8941 §4.2)' },
];

test('config, services, gateway, workers and bin make no error without a code (new Error, extends Error) beyond the allow-list', () => {
  const MAKE = /\bnew (?:Type|Range|Syntax)?Error\(|\bextends (?:Type|Range|Syntax)?Error\b/;
  const unused = new Set(UNCODED_ALLOWED);
  const offending: string[] = [];
  for (const [f, src] of text) {
    if (!CODED_ROOTS.some((r) => f.startsWith(r + '/')) || !f.endsWith('.ts')) continue;
    src.split('\n').forEach((line, i) => {
      if (!MAKE.test(line) || /^\s*(\/\/|\*)/.test(line)) return;
      const entry = UNCODED_ALLOWED.find((a) => a.file === basename(f) && line.includes(a.match));
      if (entry) unused.delete(entry);
      else offending.push(`${f}:${i + 1}: ${line.trim().slice(0, 160)}`);
    });
  }
  assert.deepEqual(offending, [], 'make these CargoErrors with a catalogue code (or allow-list them here with the reason)');
  assert.deepEqual([...unused].map((a) => `${a.file}: ${a.match}`), [], 'allow-list entries that match nothing any more');
});
