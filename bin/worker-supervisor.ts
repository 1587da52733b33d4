/**
 * `cargoport serve`'s worker processes: workers.processes children forked from workers/worker-child.ts, each
 * running one transfer pool, supervised from the serve process (which keeps the gateway and the embedded Redis).
 *
 * - A child that exits while we did not ask it to has crashed: the files it held are closed as crashed and requeued
 *   at once, or failed after workers.crashLimit crashes (workers/worker-crash.ts), and a new child is forked after a
 *   back-off that doubles with each crash in a row (RESTART_BASE_MS up to RESTART_MAX_MS; a child that lived
 *   STABLE_AFTER_MS starts the count again). The gateway keeps answering throughout.
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

class WorkerSlot {
  private child: ChildProcess | undefined;
  private workerId = '';
  private startedAt = 0;
  private inARow = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private stderrTail = '';
  private exited: Promise<void> = Promise.resolve();
  stopping = false;
  crashCount = 0;

  constructor(private readonly n: number, private readonly cfg: Config, private readonly redisUrl: string, private readonly log: ConsoleLog) {}

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** Forks the child and resolves once its pool runs; rejects with its start-up error. */
  spawn(): Promise<void> {
    const child = fork(CHILD_ENTRY, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
    this.child = child;
    this.stderrTail = '';
    this.startedAt = Date.now();
    this.workerId = `${hostname()}-${child.pid}-w${this.n}-${randomBytes(3).toString('hex')}`;
    const workerId = this.workerId;
    // stdout and stderr of a child go to ours (stdout is the serve's one URL line, kept clean); the tail of stderr
    // names a crash's cause.
    const forward = (d: Buffer) => {
      process.stderr.write(d);
      this.stderrTail = (this.stderrTail + d.toString()).slice(-STDERR_TAIL_BYTES);
    };
    child.stdout!.on('data', forward);
    child.stderr!.on('data', forward);
    let exitedResolve: () => void = () => {};
    this.exited = new Promise((res) => (exitedResolve = res));
    const ready = new Promise<void>((resolve, reject) => {
      child.on('message', (m: FromWorkerChild) => {
        if (m.op === 'log') this.log[m.level](m.msg);
        else if (m.op === 'ready') resolve();
        else if (m.op === 'failed') reject(new CargoError(m.code, `worker process ${child.pid} could not start: ${m.message}`));
      });
      child.once('error', (e) => reject(new CargoError('CARGO_ERR_WORKER_START', `worker process could not be forked: ${e.message}`)));
      child.once('exit', (code, signal) => {
        reject(new CargoError('CARGO_ERR_WORKER_START', `worker process ${child.pid} exited during start-up (${signal ? `signal ${signal}` : `exit code ${code}`}): ${crashLine(this.stderrTail)}`));
      });
    });
    child.once('exit', (code, signal) => {
      exitedResolve();
      // Read the rest of its stderr before naming the cause.
      setImmediate(() => void this.onExit(child, workerId, code, signal));
    });
    const start: ToWorkerChild = { op: 'start', cfg: this.cfg, redisUrl: this.redisUrl, workerId };
    child.send(start);
    return ready;
  }

  private async onExit(child: ChildProcess, workerId: string, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.stopping || child !== this.child) return;
    this.crashCount++;
    const cause = crashLine(this.stderrTail);
    const what = `${signal ? `signal ${signal}` : `exit code ${code}`}${cause ? `: ${cause}` : ''}`;
    this.log.error(`worker process ${child.pid} died (${what}); requeueing its files and restarting it`);
    try {
      const { recordWorkerCrash } = await import('../workers/worker-crash.js');
      let timer: NodeJS.Timeout | undefined;
      const s = await Promise.race([
        recordWorkerCrash(this.cfg, this.redisUrl, workerId, what),
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`not recorded within ${RECORD_TIMEOUT_MS} ms`)), RECORD_TIMEOUT_MS))),
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
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** this.inARow);
    this.inARow++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawn().then(
        () => this.log.info(`worker process restarted (pid ${this.child?.pid})`),
        // A failed start ends in an exit, which onExit counts and backs off from.
        (e: Error) => this.log.error(e.message),
      );
    }, delay);
  }

  /** Sends `msg` and waits for the child to exit, SIGKILLing it after `waitMs`. */
  async stop(msg: ToWorkerChild, waitMs: number): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
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
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    await this.exited;
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
