/**
 * `cargoport serve`'s worker processes: workers.processes children forked from workers/worker-child.ts, each
 * running one transfer pool, supervised from the serve process (which keeps the gateway and the embedded Redis).
 *
 * - A child that exits while we did not ask it to has crashed: the files it held are closed as crashed and requeued
 *   at once, or failed after workers.crashLimit crashes (workers/worker-crash.ts), and a new child is started: at
 *   once after the first crash, then after a back-off that doubles with each crash in a row (RESTART_BASE_MS up to
 *   RESTART_MAX_MS; a child that lived STABLE_AFTER_MS starts the count again). The gateway answers throughout.
 * - With workers.spareProcess, one more child is kept forked with its modules loaded, idle until told to start: a
 *   crashed child is replaced by it in a fraction of a second, not after Node loads the engine again (seconds on
 *   a loaded machine). The first crash after a quiet minute is replaced at once, a crash loop backs off.
 * - Each child gets its worker id from us (the id its attempts record), so we know what a dead one held.
 * - drain / close go to the children over IPC and are awaited; a child that does not exit in time is SIGKILLed
 *   (its files are then reclaimed as crashed by nobody, but as lost by the next worker's START, see start.lua).
 * - Admin operations (pause, drain, stop, restart, …) reach the children as they reach any worker process: over
 *   Redis pub/sub, nothing here.
 * - The children never outlive us: one whose IPC channel closes (we died) closes its pool and exits.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.js';
import { CargoError } from '../errors/cargo-error.js';
import { isErrorCode } from '../errors/catalogue.js';
import type { FromWorkerChild, ToWorkerChild } from '../workers/worker-child-protocol.js';
import type { ConsoleLog } from './console-log.js';

const CHILD_ENTRY = fileURLToPath(new URL('../workers/worker-child.js', import.meta.url));
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
const STABLE_AFTER_MS = 60_000;
/** Time a child gets to exit after its drain deadline or a close, before SIGKILL. */
const EXIT_GRACE_MS = 15_000;
/** Bound on recording a crash (Redis may be restarting too): the next child's START reclaims what is left. */
const RECORD_TIMEOUT_MS = 30_000;
const STDERR_TAIL_BYTES = 8192;

export interface SupervisedWorkers {
  /** pids of the live children. */
  pids(): number[];
  /** Crashes seen so far (for status and tests). */
  crashes(): number;
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** The line of a crash's stderr worth putting on the files: the error itself, not its stack or Node's banner. */
export function crashLine(stderrTail: string): string {
  const lines = stderrTail.split('\n').map((l) => l.trim()).filter(Boolean);
  const err = [...lines].reverse().find((l) => /^[\w.$]*(Error|Exception)\b.*?:/.test(l) || /^(FATAL ERROR|Aborted|Segmentation fault)/.test(l));
  return (err ?? lines.filter((l) => !l.startsWith('at ') && !/^Node\.js v/.test(l)).pop() ?? '').slice(0, 300);
}

/** A forked worker child, before or after it was told to start, with the tail of its stderr. */
interface Forked {
  child: ChildProcess;
  tail: { text: string };
  exited: Promise<void>;
}

function forkChild(): Forked {
  const child = fork(CHILD_ENTRY, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
  const tail = { text: '' };
  // stdout and stderr of a child go to ours (stdout is the serve's one URL line, kept clean); the tail of stderr
  // names a crash's cause.
  const forward = (d: Buffer) => {
    process.stderr.write(d);
    tail.text = (tail.text + d.toString()).slice(-STDERR_TAIL_BYTES);
  };
  child.stdout!.on('data', forward);
  child.stderr!.on('data', forward);
  child.on('error', () => { /* a failed fork ends in 'exit' too, handled there */ });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  return { child, tail, exited };
}

class WorkerSlot {
  private current: Forked | undefined;
  /** A child forked ahead, its modules loaded, waiting for 'start' (workers.spareProcess). */
  private spare: Forked | undefined;
  private workerId = '';
  private startedAt = 0;
  private inARow = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  stopping = false;
  crashCount = 0;

  constructor(private readonly n: number, private readonly cfg: Config, private readonly redisUrl: string, private readonly log: ConsoleLog) {}

  get pid(): number | undefined {
    const c = this.current?.child;
    return c && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
  }

  private forkSpare(): void {
    if (!this.cfg.workers.spareProcess || this.stopping || this.spare) return;
    const spare = forkChild();
    this.spare = spare;
    spare.child.once('exit', () => {
      if (this.spare === spare) this.spare = undefined;
    });
  }

  /** Starts the pool in the spare child if one is ready, else in a new one; resolves once it runs. */
  spawn(): Promise<void> {
    const f = this.spare && this.spare.child.exitCode === null && this.spare.child.connected ? this.spare : forkChild();
    if (f === this.spare) this.spare = undefined;
    this.current = f;
    const { child } = f;
    f.tail.text = '';
    this.startedAt = Date.now();
    this.workerId = `${hostname()}-${child.pid}-w${this.n}-${randomBytes(3).toString('hex')}`;
    const workerId = this.workerId;
    let queueWorkerId: string | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      child.on('message', (m: FromWorkerChild) => {
        if (m.op === 'log') this.log[m.level](m.msg);
        else if (m.op === 'ready') {
          queueWorkerId = m.queueWorkerId;
          resolve();
        }
        // the child's own error code when it is one of ours (a bad endpoints file, …), else the generic one
        else if (m.op === 'failed') reject(new CargoError(isErrorCode(m.code) ? m.code : 'CARGO_ERR_WORKER_START', `worker process ${child.pid} could not start: ${m.message}`));
      });
      child.once('error', (e) => reject(new CargoError('CARGO_ERR_WORKER_START', `worker process could not be forked: ${e.message}`)));
      child.once('exit', (code, signal) => {
        reject(new CargoError('CARGO_ERR_WORKER_START', `worker process ${child.pid} exited during start-up (${signal ? `signal ${signal}` : `exit code ${code}`}): ${crashLine(f.tail.text)}`));
      });
    });
    child.once('exit', (code, signal) => {
      // Read the rest of its stderr before naming the cause.
      setImmediate(() => void this.onExit(f, workerId, queueWorkerId, code, signal));
    });
    const start: ToWorkerChild = { op: 'start', cfg: this.cfg, redisUrl: this.redisUrl, workerId };
    child.send(start);
    // The next spare is forked once this child runs, so the two do not load their modules at once.
    return ready.then(() => this.forkSpare());
  }

  private async onExit(f: Forked, workerId: string, queueWorkerId: string | undefined, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    const { child } = f;
    if (this.stopping || f !== this.current) return;
    this.crashCount++;
    const cause = crashLine(f.tail.text);
    const what = `${signal ? `signal ${signal}` : `exit code ${code}`}${cause ? `: ${cause}` : ''}`;
    this.log.error(`worker process ${child.pid} died (${what}); requeueing its files and restarting it`);
    try {
      const { recordWorkerCrash } = await import('../workers/worker-crash.js');
      let timer: NodeJS.Timeout | undefined;
      const s = await Promise.race([
        recordWorkerCrash(this.cfg, this.redisUrl, workerId, what, queueWorkerId),
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new CargoError('CARGO_ERR_INTERNAL', `not recorded within ${RECORD_TIMEOUT_MS} ms`)), RECORD_TIMEOUT_MS))),
      ]).finally(() => clearTimeout(timer));
      this.log.warn(`worker process ${child.pid}: ${s.requeued} files requeued, ${s.closed} closed (failed after ${this.cfg.workers.crashLimit} crashes, or canceled)`);
    } catch (e) {
      this.log.error(`recording the crash of worker process ${child.pid} failed (its files are reclaimed when their locks expire): ${(e as Error).message}`);
    }
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopping) return;
    if (Date.now() - this.startedAt > STABLE_AFTER_MS) this.inARow = 0;
    // The first crash in a while is replaced at once (by the spare, if there is one); a crash loop backs off.
    const delay = this.inARow === 0 ? 0 : Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (this.inARow - 1));
    this.inARow++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawn().then(
        () => this.log.info(`worker process restarted (pid ${this.pid})`),
        // A failed start ends in an exit, which onExit counts and backs off from.
        (e: Error) => this.log.error(e.message),
      );
    }, delay);
  }

  /** Sends `msg` and waits for the child to exit, SIGKILLing it after `waitMs`; the spare is closed too. */
  async stop(msg: ToWorkerChild, waitMs: number): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const spare = this.spare;
    this.spare = undefined;
    await Promise.all([this.stopChild(this.current, msg, waitMs), this.stopChild(spare, { op: 'close' }, EXIT_GRACE_MS)]);
  }

  private async stopChild(f: Forked | undefined, msg: ToWorkerChild, waitMs: number): Promise<void> {
    if (!f) return;
    const { child } = f;
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      child.send(msg);
    } catch {
      /* channel already closed: the exit follows */
    }
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((res) => {
      timer = setTimeout(() => {
        this.log.error(`worker process ${child.pid} did not exit within ${waitMs} ms; killing it`);
        child.kill('SIGKILL');
        res();
      }, waitMs);
    });
    await Promise.race([f.exited, killed]);
    clearTimeout(timer);
    await f.exited;
  }
}

export async function startSupervisedWorkers(cfg: Config, ctx: { redisUrl: string; log: ConsoleLog }): Promise<SupervisedWorkers> {
  const slots = Array.from({ length: cfg.workers.processes }, (_, i) => new WorkerSlot(i, cfg, ctx.redisUrl, ctx.log));
  try {
    await Promise.all(slots.map((s) => s.spawn()));
  } catch (e) {
    await Promise.all(slots.map((s) => s.stop({ op: 'close' }, EXIT_GRACE_MS)));
    throw e;
  }
  return {
    pids: () => slots.map((s) => s.pid).filter((p): p is number => p !== undefined),
    crashes: () => slots.reduce((n, s) => n + s.crashCount, 0),
    async drain(timeoutMs) {
      await Promise.all(slots.map((s) => s.stop({ op: 'drain', timeoutMs }, timeoutMs + EXIT_GRACE_MS)));
    },
    async close() {
      await Promise.all(slots.map((s) => s.stop({ op: 'close' }, EXIT_GRACE_MS)));
    },
  };
}
