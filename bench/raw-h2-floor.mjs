// bench/raw-h2-floor — how cheap can a Node HTTP/2 download be on this machine? curl --http2 against the bare
// client in bench/lib/raw-h2-pull.mjs (no per-frame Buffers, native adler32, 1 MiB writes), alternating, same nginx
// (HTTP/2, TLS, 2 workers, sendfile off), tmpfs → tmpfs; each output file is removed before the other client runs
// (a client writing into pages the VM has never backed pays several times the copy cost: see RESULTS).
//
//   npx tsc -p tsconfig.json && node bench/raw-h2-floor.mjs [size_mib=1024] [runs=3]
import { startNginx } from '../dist/bench/lib/nginx.js';
import { timedChild } from '../dist/bench/lib/timed-child.js';
import { testTls } from '../dist/test/support/tls.js';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { adler32Update } from '../dist/services/checksum/adler32.js';
const MIB = Number(process.argv[2] ?? 2048), RUNS = Number(process.argv[3] ?? 3);
const dir = '/dev/shm/rawh2'; rmSync(dir, { recursive: true, force: true }); mkdirSync(dir + '/root', { recursive: true });
execFileSync('sh', ['-c', `head -c ${MIB}M /dev/urandom > ${dir}/root/big`]);
let expected = 1;
for await (const c of (await import('node:fs')).createReadStream(`${dir}/root/big`, { highWaterMark: 1 << 20 })) expected = adler32Update(expected, c);
const port = 19500;
const ng = await startNginx({ dir, root: dir + '/root', port, sendfile: false });
const ca = testTls().certPath;
const GIB = 1024 ** 3, bytes = MIB * 1024 * 1024;
try {
  for (let r = 0; r < RUNS; r++) {
    const c = await timedChild('curl', ['-s', '--http2', '--cacert', ca, '-o', dir + '/out-curl', `https://localhost:${port}/big`, '--resolve', `localhost:${port}:127.0.0.1`]);
    rmSync(dir + '/out-curl');
    const n = await timedChild('env', [`CA=${ca}`, `MAXW=${process.env.MAXW ?? 99}`, `SYNCW=${process.env.SYNCW ?? 0}`, `STAGE=${process.env.STAGE ?? 1048576}`, process.execPath, new URL('./lib/raw-h2-pull.mjs', import.meta.url).pathname, String(port), '/big', dir + '/out-raw']);
    if (statSync(dir + '/out-raw').size !== bytes) throw new Error('short raw ' + n.stdout + ' size ' + statSync(dir + '/out-raw').size);
    const f = (t) => `${(bytes / t.secs / 1e6).toFixed(0)} MB/s ${(t.cpu / (bytes / GIB)).toFixed(2)} cpu-s/GiB`;
    if (parseInt(JSON.parse(n.stdout).adler32, 16) !== expected) throw new Error('raw-h2: adler32 differs from the source');
    console.log(n.stdout.trim()); console.log(`run ${r + 1}: curl ${f(c)} | raw-h2 ${f(n)} | cpu ratio ${(n.cpu / c.cpu).toFixed(2)}`);
    rmSync(dir + '/out-raw');
  }
} finally { await ng.stop(); rmSync(dir, { recursive: true, force: true }); }
