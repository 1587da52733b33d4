/**
 * The private redis-server of `cargoport serve` when no `redis.url` is configured.
 *
 * Layout in `<dataDir>/redis/`: redis.conf (written on every start), redis.sock (unix socket only, no TCP),
 * redis.pid, redis.log, the AOF directory, and owner.pid (the cargoport process that runs it).
 *
 * Lifecycle:
 * - start: a leftover server from a SIGKILLed parent (owner.pid dead, pidfile/socket present) is reused when it
 *   answers PING and its `dir` is ours — that keeps the writes of its last second, which an AOF reload
 *   (appendfsync everysec) could lose; otherwise it is stopped and a fresh one started.
 * - supervision: if the server dies while we did not ask it to, it is restarted (the AOF brings the data back,
 *   ioredis clients reconnect on their own). More than MAX_CRASHES deaths within CRASH_WINDOW_MS means
 *   something is wrong that a restart does not fix: we give up loudly through `onGiveUp`.
 * - stop: SHUTDOWN (fsyncs the AOF), then SIGTERM, then SIGKILL, each after a grace period.
 * - never left behind: a watchdog (a few lines of sh, detached, see WATCHDOG_SCRIPT) holds a pipe from us and is
 *   told the server's pid; when that pipe closes without a "release" (we were SIGKILLed, or crashed) it sends the
 *   server SIGTERM, on which Redis fsyncs its AOF and exits. So a kill -9 of `serve` leaves no redis-server, and
 *   the next start loads the AOF (the leftover reuse below stays for a watchdog that was killed too).
 *
 * The server runs in its own process group so a Ctrl-C in the terminal (SIGINT to the foreground group) reaches
 * only cargoport, which then drains its workers while Redis is still up, and stops Redis last.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { CargoError, type ErrorCode } from '../errors/cargo-error.js';

export interface EmbeddedRedisLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface EmbeddedRedisOptions {
  dataDir: string;
  /** redis-server command name or path (config `redis.serverBinary`). */
  binary: string;
  log: EmbeddedRedisLog;
  /** Called once if the server keeps dying and supervision gives up; the caller should shut down. */
  onGiveUp?: (err: Error) => void;
  /** How long to wait for the first PONG (AOF loading of a large queue can take a while). */
  startTimeoutMs?: number;
}

export interface EmbeddedRedis {
  /** `unix:///abs/path/redis.sock` (path percent-encoded) */
  url: string;
  socketPath: string;
  /** pid of the current redis-server */
  pid(): number;
  stop(): Promise<void>;
}

export class EmbeddedRedisError extends CargoError {
  constructor(code: ErrorCode, message: string, field?: string) {
    super(code, message, { httpStatus: 500, field });
    this.name = 'EmbeddedRedisError';
  }
}

const MAX_CRASHES = 5;
const CRASH_WINDOW_MS = 60_000;
/** Linux sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;
const ADOPTED_POLL_MS = 1000;

/**
 * Reads "pid N" / "release" lines from its stdin (our pipe) until EOF, then SIGTERMs the last pid named (and not
 * released) if /proc still says it is a redis-server (a reused pid is never signalled). Signals sent to our
 * process group (Ctrl-C) are ignored: only the pipe's end says we are gone.
 */
const WATCHDOG_SCRIPT = `trap '' INT TERM HUP
pid=
while IFS= read -r line; do
  case "$line" in
    "pid "*) pid=\${line#pid } ;;
    release) pid= ;;
  esac
done
[ -n "$pid" ] || exit 0
case "$(tr '\\000' ' ' < /proc/$pid/cmdline 2>/dev/null)" in
  *redis-server*) kill -TERM "$pid" ;;
esac`;

interface Watchdog {
  watch(pid: number): void;
  release(): void;
}

function startWatchdog(log: EmbeddedRedisLog): Watchdog {
  const w = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  w.on('error', (e) => log.warn(`embedded redis watchdog could not start (a kill -9 of this process would leave redis-server running): ${e.message}`));
  w.stdin!.on('error', () => { /* the watchdog gone: nothing to tell it */ });
  w.unref();
  // The pipe must not keep our event loop alive; it only has to close when we die.
  (w.stdin as unknown as { unref?: () => void }).unref?.();
  return {
    watch: (pid) => void w.stdin!.write(`pid ${pid}\n`),
    release: () => {
      w.stdin!.end('release\n');
    },
  };
}

/** Resolves a command name against PATH like execvp would; undefined when not found or not executable. */
export function findExecutable(binary: string, pathEnv = process.env.PATH ?? ''): string | undefined {
  const candidates = binary.includes('/') ? [binary] : pathEnv.split(delimiter).filter(Boolean).map((d) => join(d, binary));
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Whether a process runs; a zombie (exited, not yet reaped by its parent) counts as gone. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // An exited process whose parent has not reaped it yet (a zombie) still accepts signal 0.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Redis config files take "double-quoted" arguments; refuse what its parser would read differently. */
function quoteConf(value: string): string {
  if (/["\\\r\n]/.test(value)) throw new EmbeddedRedisError('CARGO_ERR_REDIS_PATH', `dataDir path ${JSON.stringify(value)} contains a quote, backslash or newline, which redis.conf cannot hold`, 'dataDir');
  return `"${value}"`;
}

interface Paths {
  dir: string;
  socket: string;
  pidfile: string;
  conf: string;
  logfile: string;
  owner: string;
}

function pathsOf(dataDir: string): Paths {
  const dir = join(dataDir, 'redis');
  return {
    dir,
    socket: join(dir, 'redis.sock'),
    pidfile: join(dir, 'redis.pid'),
    conf: join(dir, 'redis.conf'),
    logfile: join(dir, 'redis.log'),
    owner: join(dir, 'owner.pid'),
  };
}

function configText(p: Paths): string {
  return [
    '# Written by cargoport on every start of the embedded Redis; edits are overwritten.',
    'port 0',
    `unixsocket ${quoteConf(p.socket)}`,
    'unixsocketperm 700',
    `dir ${quoteConf(p.dir)}`,
    `pidfile ${quoteConf(p.pidfile)}`,
    `logfile ${quoteConf(p.logfile)}`,
    'daemonize no',
    'appendonly yes',
    'appendfsync everysec',
    // The AOF is the durability; RDB snapshots on top would only add fork + disk load.
    'save ""',
    'maxmemory-policy noeviction',
    '',
  ].join('\n');
}

/** One command on a fresh connection, no retries: for probing, where a failure is an answer. */
async function probe<T>(socket: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    path: socket,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
    commandTimeout: 5000,
    // Probing a server that is still loading its AOF must not wait inside ioredis: we poll ourselves.
    enableReadyCheck: false,
  });
  r.on('error', () => { /* reported through the rejected promise */ });
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

type PingResult = 'pong' | 'loading' | 'down';
async function ping(socket: string): Promise<PingResult> {
  try {
    await probe(socket, (r) => r.ping());
    return 'pong';
  } catch (e) {
    return /LOADING/.test((e as Error).message) ? 'loading' : 'down';
  }
}

async function serverDirAndPid(socket: string): Promise<{ dir: string; pid: number }> {
  return probe(socket, async (r) => {
    const dir = (await r.config('GET', 'dir')) as string[];
    const info = await r.info('server');
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    return { dir: dir[1] ?? '', pid };
  });
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isProcessAlive(pid)) return true;
    await sleep(25);
  }
  return !isProcessAlive(pid);
}

/** SHUTDOWN, then SIGTERM, then SIGKILL — each step only if the previous one did not end the process. */
async function stopServer(socket: string, pid: number | undefined, log: EmbeddedRedisLog): Promise<void> {
  try {
    await probe(socket, (r) => r.call('SHUTDOWN'));
  } catch {
    /* SHUTDOWN closes the connection without a reply on success; errors fall through to signals */
  }
  if (pid === undefined || (await waitForExit(pid, 10_000))) return;
  log.warn(`embedded redis (pid ${pid}) ignored SHUTDOWN; sending SIGTERM`);
  try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  if (await waitForExit(pid, 10_000)) return;
  log.error(`embedded redis (pid ${pid}) ignored SIGTERM; sending SIGKILL`);
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  await waitForExit(pid, 5_000);
}

function lastLogLines(logfile: string, n = 5): string {
  try {
    return readFileSync(logfile, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no redis.log)';
  }
}

/**
 * Deals with what a previous run left behind. Returns the pid of a server to adopt, or undefined when the
 * caller must start a fresh one.
 */
async function handleLeftover(p: Paths, log: EmbeddedRedisLog): Promise<number | undefined> {
  const pidFromFile = readPid(p.pidfile);
  const pong = await ping(p.socket);
  if (pong === 'pong') {
    const { dir, pid } = await serverDirAndPid(p.socket).catch(() => ({ dir: '', pid: NaN }));
    if (Number.isInteger(pid) && samePath(dir, p.dir)) {
      log.warn(`reusing the embedded redis left running by a previous run that did not stop cleanly (pid ${pid})`);
      return pid;
    }
    log.warn(`a redis-server answering on ${p.socket} is not ours (dir ${dir || 'unknown'}); stopping it`);
    await stopServer(p.socket, Number.isInteger(pid) ? pid : pidFromFile, log);
    return undefined;
  }
  if (pidFromFile !== undefined && isProcessAlive(pidFromFile) && isRedisProcess(pidFromFile)) {
    // Alive but not answering (hung, or still loading): we cannot tell how long it needs, so start clean.
    log.warn(`leftover embedded redis (pid ${pidFromFile}) does not answer PING (${pong}); stopping it`);
    await stopServer(p.socket, pidFromFile, log);
  }
  return undefined;
}

/** True when /proc says the pid runs a redis-server (guards against signalling a reused pid). */
function isRedisProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
  } catch {
    return false;
  }
}

/** Refuses to run two cargoport processes on one embedded Redis: the second would stop the first's on exit. */
function claimOwnership(p: Paths): void {
  const owner = readPid(p.owner);
  if (owner !== undefined && owner !== process.pid && isProcessAlive(owner)) {
    throw new EmbeddedRedisError('CARGO_ERR_DATADIR_IN_USE', `the data directory ${p.dir} is in use by another cargoport process (pid ${owner}); stop it or use another dataDir`, 'dataDir');
  }
  writeFileSync(p.owner, `${process.pid}\n`);
}

export async function startEmbeddedRedis(opts: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const { log } = opts;
  if (!isAbsolute(opts.dataDir)) throw new EmbeddedRedisError('CARGO_ERR_REDIS_PATH', `dataDir must be absolute here (got ${opts.dataDir})`, 'dataDir');
  const binary = findExecutable(opts.binary);
  if (!binary) {
    throw new EmbeddedRedisError('CARGO_ERR_REDIS_BINARY_MISSING',
      `redis-server not found (redis.serverBinary = "${opts.binary}"): install it (apt-get install redis-server) or set redis.url / CARGOPORT_REDIS_URL to an existing Redis`,
      'redis.serverBinary');
  }
  const p = pathsOf(opts.dataDir);
  if (Buffer.byteLength(p.socket) > MAX_SOCKET_PATH) {
    throw new EmbeddedRedisError('CARGO_ERR_REDIS_PATH', `the embedded Redis socket path ${p.socket} is longer than ${MAX_SOCKET_PATH} bytes (a unix socket limit); use a shorter dataDir`, 'dataDir');
  }
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  claimOwnership(p);
  const startTimeoutMs = opts.startTimeoutMs ?? 120_000;

  let child: ChildProcess | undefined;
  let currentPid: number;
  let stopping = false;
  let gaveUp = false;
  const crashes: number[] = [];
  let adoptedPoll: NodeJS.Timeout | undefined;
  const watchdog = startWatchdog(log);

  const launch = async (): Promise<void> => {
    writeFileSync(p.conf, configText(p), { mode: 0o600 });
    const c = spawn(binary, [p.conf], { stdio: 'ignore', detached: true });
    c.unref();
    const spawnError = new Promise<never>((_, reject) => c.once('error', reject));
    spawnError.catch(() => { /* observed below */ });
    child = c;
    const exited = new Promise<'exited'>((resolve) => c.once('exit', () => resolve('exited')));
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      const state = await Promise.race([ping(p.socket), exited, spawnError]);
      if (state === 'pong') break;
      if (state === 'exited') {
        throw new EmbeddedRedisError('CARGO_ERR_REDIS_START', `embedded redis-server exited during start-up; last lines of ${p.logfile}:\n${lastLogLines(p.logfile)}`);
      }
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new EmbeddedRedisError('CARGO_ERR_REDIS_START', `embedded redis-server did not answer PING within ${startTimeoutMs} ms (${state}); see ${p.logfile}`);
      }
      await sleep(state === 'loading' ? 200 : 25);
    }
    currentPid = c.pid!;
    watchdog.watch(currentPid);
    c.once('exit', (code, signal) => void onUnexpectedExit(`code ${code}, signal ${signal}`));
  };

  const onUnexpectedExit = async (how: string): Promise<void> => {
    if (stopping || gaveUp) return;
    const now = Date.now();
    crashes.push(now);
    while (crashes.length && crashes[0]! < now - CRASH_WINDOW_MS) crashes.shift();
    log.error(`embedded redis-server (pid ${currentPid}) died unexpectedly (${how}); last lines of ${p.logfile}:\n${lastLogLines(p.logfile)}`);
    if (crashes.length > MAX_CRASHES) {
      gaveUp = true;
      const err = new EmbeddedRedisError('CARGO_ERR_REDIS_CRASHING', `embedded redis-server died ${crashes.length} times within ${CRASH_WINDOW_MS / 1000} s; giving up (see ${p.logfile})`);
      log.error(err.message);
      opts.onGiveUp?.(err);
      return;
    }
    log.warn('restarting the embedded redis-server (its AOF restores the data)');
    // Back off a little more after each crash, so a server that cannot start does not spin.
    await sleep(250 * crashes.length);
    if (stopping) return;
    try {
      await launch();
      log.info(`embedded redis-server restarted (pid ${currentPid})`);
    } catch (e) {
      await onUnexpectedExit((e as Error).message);
    }
  };

  const adopted = await handleLeftover(p, log);
  if (adopted !== undefined) {
    currentPid = adopted;
    watchdog.watch(adopted);
    // Not our child: no exit event, so watch its pid.
    adoptedPoll = setInterval(() => {
      if (child === undefined && !isProcessAlive(currentPid) && !stopping) {
        clearInterval(adoptedPoll);
        void onUnexpectedExit('adopted process vanished');
      }
    }, ADOPTED_POLL_MS);
    adoptedPoll.unref();
  } else {
    await launch();
    log.info(`embedded redis-server started (pid ${currentPid!}, socket ${p.socket})`);
  }

  let stopped: Promise<void> | undefined;
  return {
    // Percent-encoded like any URL path, so a data directory with spaces or % survives the round trip.
    url: `unix://${encodeURI(p.socket)}`,
    socketPath: p.socket,
    pid: () => currentPid,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        if (adoptedPoll) clearInterval(adoptedPoll);
        await stopServer(p.socket, currentPid, log);
        watchdog.release();
        rmSync(p.owner, { force: true });
      })();
      return stopped;
    },
  };
}
