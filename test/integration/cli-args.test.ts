/**
 * Command lines the CLI must refuse before doing anything: each run is the real `node bin/cargoport.js` in a
 * child process; usage errors exit 2 with a message naming what is wrong, runtime failures exit 1 with one line.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = join(resolve(fileURLToPath(import.meta.url), '../../../..'), 'bin', 'cargoport.js');

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CARGOPORT_')));
  return new Promise((res) => {
    execFile(process.execPath, [cli, ...args], { env: { ...base, ...env } }, (err, stdout, stderr) => {
      res({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

const usageCases: Array<[string, string[], RegExp]> = [
  ['no command', [], /usage: cargoport/],
  ['unknown command', ['frobnicate'], /unknown command "frobnicate"/],
  ['unknown option', ['submit', 'a', 'b', '--bogus'], /Unknown option '--bogus'/],
  ['odd number of paths', ['submit', 'https://s/a', 'file:///d/a', 'https://s/b'], /"https:\/\/s\/b" has no destination/],
  ['nothing to submit', ['submit'], /give SRC DST pairs or --manifest/],
  ['pairs and a manifest', ['submit', 'a', 'b', '--manifest', 'm.txt'], /either SRC DST pairs or --manifest/],
  ['priority out of range', ['submit', 'a', 'b', '--priority', '9'], /--priority must be an integer from 1 to 5 \(got "9"\)/],
  ['retries not a number', ['submit', 'a', 'b', '--retries', 'many'], /--retries must be an integer/],
  ['bad verify mode', ['submit', 'a', 'b', '--verify', 'always'], /--verify must be one of none, source, destination, both/],
  ['bad copy mode', ['submit', 'a', 'b', '--copy-mode', 'fast'], /--copy-mode must be one of auto, pull, push, streamed/],
  ['checksum on several files', ['submit', 'a', 'b', 'c', 'd', '--checksum', 'adler32:01'], /--checksum applies to a single-file submission/],
  ['malformed checksum', ['submit', 'a', 'b', '--checksum', 'adler32'], /--checksum must be ALG:VALUE/],
  ['unreadable manifest', ['submit', '--manifest', '/nonexistent/manifest.txt'], /cannot read manifest \/nonexistent\/manifest\.txt: ENOENT/],
  ['value option without value', ['submit', 'a', 'b', '--priority'], /--priority/],
  ['jobs with an unknown state', ['jobs', '--state', 'DONE'], /--state must be one of ACTIVE, FINISHED, FINISHED_DIRTY, FAILED, CANCELED/],
  ['cancel without job', ['cancel'], /missing JOB_ID/],
  ['admin unknown op', ['admin', 'explode'], /unknown operation "explode"/],
  ['admin bad scope', ['admin', 'pause', '--scope', 'galaxy'], /--scope must be one of port, pool, link, endpoint/],
  ['admin link without target', ['admin', 'pause', '--scope', 'link'], /--scope link needs --target/],
  ['status with two ids', ['status', 'a', 'b'], /unexpected argument "b"/],
  ['gateway role without redis.url', ['gateway'], /set redis\.url/],
  ['worker role without redis.url', ['worker'], /set redis\.url/],
  ['client URL not https', ['jobs', '--url', 'http://localhost:1'], /--url must be https:\/\//],
];

for (const [name, args, message] of usageCases) {
  test(`usage error: ${name} → exit 2 with a message`, async () => {
    const r = await run(args);
    assert.equal(r.code, 2, `exit code for ${args.join(' ')}; stderr: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  });
}

test('--help prints the command list, COMMAND --help its options; both exit 0', async () => {
  let r = await run(['--help']);
  assert.equal(r.code, 0);
  for (const c of ['serve', 'gateway', 'worker', 'submit', 'jobs', 'status', 'cancel', 'admin']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
  r = await run(['submit', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--manifest FILE/);
  r = await run(['help', 'admin']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--scope SCOPE/);
});

test('a bad configuration value stops the CLI with the key named (exit 1)', async () => {
  const r = await run(['jobs'], { CARGOPORT_GATEWAY_PORT: 'eighty' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /CARGOPORT_GATEWAY_PORT \(setting "gateway\.port"\) must be an integer from 0 to 65535/);
  const r2 = await run(['--config', '/nonexistent/cargoport.yaml', 'jobs']);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /cannot read config file \/nonexistent\/cargoport\.yaml/);
});

test('an unreachable gateway is one line with a hint (exit 1)', async () => {
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  const r = await run(['jobs', '--url', 'https://127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'cargoport jobs: cannot reach https://127.0.0.1:1: connection refused (is `cargoport serve` running? pass --url)\n');
});

test('serve without a redis-server binary says in one line how to fix it (exit 1)', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-nobin-'));
  try {
    const r = await run(['serve'], { CARGOPORT_DATA_DIR: dataDir, CARGOPORT_GATEWAY_PORT: '0', CARGOPORT_REDIS_SERVER_BINARY: 'no-such-redis-server' });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /redis-server not found .*apt-get install redis-server.*redis\.url/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
