/**
 * Serving benchmark for the storage endpoint (issue 4): download of one large file with `curl --http2` from
 * cargoport vs nginx (HTTP/2 + TLS, same file, same page cache, same machine, same run), alternating runs;
 * then N concurrent `curl --http2` clients downloading from cargoport (all must succeed), timed against the
 * same N clients on nginx.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/storage-serving.js [--size-mib 2048] [--runs 3] [--clients 200] [--client-mib 16]
 *
 * nginx runs with one worker process (cargoport serves from one event loop) and `sendfile` irrelevant (TLS).
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, openSync, writeSync, closeSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startStorageServer } from '../test/support/storage-server.js';
import { testTls } from '../test/support/tls.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const sizeMiB = arg('size-mib', 2048);
const runs = arg('runs', 3);
const clients = arg('clients', 200);
const clientMiB = arg('client-mib', 16);
const uploadRuns = arg('upload-runs', 3);

function makeFile(path: string, mib: number): void {
  const block = randomBytes(1 << 20);
  const fd = openSync(path, 'w');
  for (let i = 0; i < mib; i++) writeSync(fd, block, 0, block.length);
  closeSync(fd);
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

async function curlSpeed(url: string): Promise<number> {
  const r = await run('curl', ['--http2', '-sS', '--cacert', testTls().certPath, '-o', '/dev/null', '-w', '%{speed_download} %{http_version} %{size_download}', url]);
  const [speed, ver, size] = r.out.trim().split(' ');
  if (r.code !== 0 || ver !== '2' || Number(size) !== sizeMiB * 1024 * 1024) throw new Error(`curl failed: ${r.code} ${r.out} ${r.err}`);
  return Number(speed);
}

async function concurrent(url: string, n: number, expected: number): Promise<{ ok: number; ms: number }> {
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: n }, () =>
      run('curl', ['--http2', '-sS', '--cacert', testTls().certPath, '--retry', '0', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', url]),
    ),
  );
  const ms = performance.now() - t0;
  const ok = results.filter((r) => r.code === 0 && r.out.trim() === `200 ${expected}`).length;
  return { ok, ms };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** CPU seconds (user + system) of a process tree rooted at `pid` (nginx master + workers), from /proc. */
function procTreeCpuSeconds(pid: number): number {
  let ticks = 0;
  const pids = [pid];
  try {
    pids.push(...readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    /* no children file */
  }
  for (const p of pids) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      /* gone */
    }
  }
  return ticks / 100; // USER_HZ
}

/** This process's CPU seconds: the cargoport server runs here (event loop + libuv fs threads). */
function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function main(): Promise<void> {
  const srv = await startStorageServer();
  const dir = join(srv.permanentDir, 'bench');
  mkdirSync(dir, { recursive: true });
  console.log(`creating ${sizeMiB} MiB and ${clientMiB} MiB files…`);
  makeFile(join(dir, 'big.bin'), sizeMiB);
  makeFile(join(dir, 'small.bin'), clientMiB);
  // nginx workers may run as nobody: make the tree readable.
  for (let p = dir; p.length > 1 && p.startsWith(srv.dir); p = p.slice(0, p.lastIndexOf('/'))) chmodSync(p, 0o755);
  chmodSync(srv.dir, 0o755);

  const tls = testTls();
  const ngDir = join(srv.dir, 'nginx');
  mkdirSync(join(ngDir, 'logs'), { recursive: true });
  mkdirSync(join(ngDir, 'upload'), { recursive: true });
  mkdirSync(join(ngDir, 'body'), { recursive: true });
  chmodSync(join(ngDir, 'upload'), 0o777);
  chmodSync(join(ngDir, 'body'), 0o777);
  const ngPort = 20000 + Math.floor(Math.random() * 20000);
  writeFileSync(
    join(ngDir, 'nginx.conf'),
    `${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
pid ${ngDir}/nginx.pid;
error_log ${ngDir}/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${ngDir}/body; proxy_temp_path ${ngDir}/proxy; fastcgi_temp_path ${ngDir}/fcgi;
  uwsgi_temp_path ${ngDir}/uwsgi; scgi_temp_path ${ngDir}/scgi;
  server {
    listen 127.0.0.1:${ngPort} ssl http2;
    ssl_certificate ${tls.certPath};
    ssl_certificate_key ${tls.keyPath};
    location /data/ { alias ${srv.permanentDir}/; }
    location /upload/ { alias ${ngDir}/upload/; dav_methods PUT; client_max_body_size 0; client_body_buffer_size 1m; }
  }
}
`,
  );
  const nginx = spawn('nginx', ['-p', ngDir, '-c', join(ngDir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'inherit' });
  await new Promise((r) => setTimeout(r, 1000));
  try {
    execFileSync('cat', [join(dir, 'big.bin')], { stdio: ['ignore', 'ignore', 'ignore'] }); // warm the page cache
    const oursUrl = `${srv.base}/bench/big.bin`;
    const ngUrl = `https://127.0.0.1:${ngPort}/data/bench/big.bin`;
    const ours: number[] = [];
    const theirs: number[] = [];
    const pairs: number[] = [];
    let ourCpu = 0;
    let theirCpu = 0;
    const ngPid = Number(readFileSync(join(ngDir, 'nginx.pid'), 'utf8'));
    for (let i = 0; i < runs; i++) {
      let c0 = selfCpuSeconds();
      ours.push(await curlSpeed(oursUrl));
      ourCpu += selfCpuSeconds() - c0;
      c0 = procTreeCpuSeconds(ngPid);
      theirs.push(await curlSpeed(ngUrl));
      theirCpu += procTreeCpuSeconds(ngPid) - c0;
      pairs.push(ours[i] / theirs[i]);
      console.log(`run ${i + 1}: cargoport ${(ours[i] / 1e6).toFixed(0)} MB/s, nginx ${(theirs[i] / 1e6).toFixed(0)} MB/s, ratio ${pairs[i].toFixed(3)}`);
    }
    const gib = (runs * sizeMiB) / 1024;
    console.log(`single ${sizeMiB} MiB download, curl --http2, ${runs} alternating runs: median cargoport ${(median(ours) / 1e6).toFixed(0)} MB/s, nginx ${(median(theirs) / 1e6).toFixed(0)} MB/s; ratio of medians ${(median(ours) / median(theirs)).toFixed(3)}, median of paired ratios ${median(pairs).toFixed(3)}`);
    console.log(`server CPU per GiB served: cargoport ${(ourCpu / gib).toFixed(2)} s, nginx ${(theirCpu / gib).toFixed(2)} s, ratio nginx/cargoport ${(theirCpu / ourCpu).toFixed(3)}`);

    const expected = clientMiB * 1024 * 1024;
    const c1 = await concurrent(`${srv.base}/bench/small.bin`, clients, expected);
    const c2 = await concurrent(`https://127.0.0.1:${ngPort}/data/bench/small.bin`, clients, expected);
    console.log(`${clients} concurrent clients × ${clientMiB} MiB: cargoport ${c1.ok}/${clients} ok in ${(c1.ms / 1000).toFixed(1)} s, nginx ${c2.ok}/${clients} ok in ${(c2.ms / 1000).toFixed(1)} s, time ratio nginx/cargoport ${(c2.ms / c1.ms).toFixed(3)}`);
    if (c1.ok !== clients) process.exitCode = 1;

    // Uploads (import): the same big file PUT with curl --http2 -T; cargoport fsyncs and publishes atomically,
    // nginx's dav module renames its temp file without fsync.
    if (uploadRuns > 0) {
      const up: number[] = [];
      const ngUp: number[] = [];
      let upCpu = 0;
      let ngUpCpu = 0;
      const upload = async (url: string) => {
        const r = await run('curl', ['--http2', '-sS', '--cacert', testTls().certPath, '-T', join(dir, 'big.bin'), '-o', '/dev/null', '-w', '%{speed_upload} %{http_code}', url]);
        const [speed, code] = r.out.trim().split(' ');
        if (r.code !== 0 || !['201', '204'].includes(code)) throw new Error(`upload failed: ${r.out} ${r.err}`);
        return Number(speed);
      };
      for (let i = 0; i < uploadRuns; i++) {
        let c0 = selfCpuSeconds();
        up.push(await upload(`${srv.base}/bench/up-${i}.bin`));
        upCpu += selfCpuSeconds() - c0;
        c0 = procTreeCpuSeconds(ngPid);
        ngUp.push(await upload(`https://127.0.0.1:${ngPort}/upload/up-${i}.bin`));
        ngUpCpu += procTreeCpuSeconds(ngPid) - c0;
        console.log(`upload run ${i + 1}: cargoport ${(up[i] / 1e6).toFixed(0)} MB/s, nginx ${(ngUp[i] / 1e6).toFixed(0)} MB/s, ratio ${(up[i] / ngUp[i]).toFixed(3)}`);
      }
      const ugib = (uploadRuns * sizeMiB) / 1024;
      console.log(`upload ${sizeMiB} MiB, curl --http2 -T, ${uploadRuns} alternating runs: median cargoport ${(median(up) / 1e6).toFixed(0)} MB/s, nginx ${(median(ngUp) / 1e6).toFixed(0)} MB/s, ratio ${(median(up) / median(ngUp)).toFixed(3)}; server CPU per GiB cargoport ${(upCpu / ugib).toFixed(2)} s, nginx ${(ngUpCpu / ugib).toFixed(2)} s`);
    }
  } finally {
    nginx.kill('SIGTERM');
    try {
      const pid = Number(readFileSync(join(ngDir, 'nginx.pid'), 'utf8'));
      if (pid) process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    await srv.close();
  }
}

await main();
