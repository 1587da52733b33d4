/**
 * A site hook program run as a stream stage (the contract is in README.md beside this file):
 *
 * - argv is the operator's `command` (no shell; `io: files` appends INPUT_PATH OUTPUT_PATH, paths the port makes);
 *   the environment is built from scratch (nothing of the worker's, so no credential leaks into a hook): PATH,
 *   LANG, TMPDIR, CARGOPORT_HOOK, CARGOPORT_SIDE, CARGOPORT_FILE_NAME, the operator's `env` and the user's
 *   CARGOPORT_PARAM_* values, each already matched against the hook's rules;
 * - `io: stream`: the bytes go to stdin and the hook's stdout is the stage's output, with back-pressure both ways
 *   (a hook that stops reading stops the source; a slow destination pauses the hook's stdout);
 *   `io: files`: the input is written to a private file, the hook runs once with both paths, its output file is
 *   streamed on;
 * - exit 0 = success (a stream hook must also have read all its input); any other status fails the file with the
 *   last `stderrBytes` of its stderr as the reason; 75 (EX_TEMPFAIL) marks the failure retryable;
 * - the time limit counts only while the transfer is not paused; past it the hook's process group gets SIGTERM,
 *   then SIGKILL after the grace; destroying the stage (abort, a failure elsewhere in the chain) SIGKILLs the group
 *   at once and removes the private files.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createReadStream, createWriteStream, type ReadStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Duplex, type Readable, type Writable } from 'node:stream';
import type { Gate } from '../throttle/pause-gate.js';
import type { ExecHook } from './site-hooks.js';
import { ProcessingError } from './processing-errors.js';

const EX_TEMPFAIL = 75;

export interface ExecHookRun {
  readonly hook: ExecHook;
  /** The complete environment of the child. */
  readonly env: Readonly<Record<string, string>>;
  /** Parent of the run's private directory (files io) and the child's working directory. */
  readonly workDir: string;
  readonly stderrBytes: number;
  readonly gate?: Gate;
}

/** The last `limit` bytes written to it. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8').trim();
  }
}

type Child = ChildProcessByStdio<Writable | null, Readable | null, Readable>;

export class ExecHookStream extends Duplex {
  private child: Child | null = null;
  private exited = false;
  private readonly stderr: TailBuffer;
  private timer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private timedOut = false;
  private runMs = 0;
  private lastTick = Date.now();
  /** files io */
  private dir: string | null = null;
  private inputFile: WriteStream | null = null;
  private output: ReadStream | null = null;
  private readonly ready: Promise<void>;

  constructor(private readonly run: ExecHookRun) {
    super({ allowHalfOpen: true });
    this.stderr = new TailBuffer(run.stderrBytes);
    this.ready = run.hook.io === 'stream' ? Promise.resolve(this.startStream()) : this.prepareFiles();
    this.ready.catch((e: unknown) => this.destroy(e as Error));
  }

  private spawnChild(extraArgs: string[], stdin: 'pipe' | 'ignore', stdout: 'pipe' | 'ignore'): Child {
    const [program, ...args] = this.run.hook.command;
    const child = spawn(program!, [...args, ...extraArgs], {
      env: this.run.env, cwd: this.run.workDir, shell: false, detached: true, stdio: [stdin, stdout, 'pipe'],
    }) as Child;
    this.child = child;
    child.stderr.on('data', (c: Buffer) => this.stderr.add(c));
    child.on('error', (e) => this.destroy(this.failure(`could not be started: ${e.message}`, false)));
    child.on('close', (code, signal) => this.onClose(code, signal));
    this.startClock();
    return child;
  }

  private startStream(): void {
    const child = this.spawnChild([], 'pipe', 'pipe');
    child.stdin!.on('error', () => undefined); // EPIPE: the hook stopped reading; its exit status says why
    child.stdout!.on('data', (c: Buffer) => {
      if (!this.push(c)) child.stdout!.pause();
    });
  }

  private async prepareFiles(): Promise<void> {
    this.dir = await mkdtemp(join(this.run.workDir, `hook-${this.run.hook.name}-`));
    this.inputFile = createWriteStream(join(this.dir, 'input'), { flags: 'wx', mode: 0o600 });
    this.inputFile.on('error', (e) => this.destroy(e));
  }

  /** Counts run time only while the gate is open; past the limit: SIGTERM, then SIGKILL after the grace. */
  private startClock(): void {
    const limitMs = this.run.hook.timeoutSec * 1000;
    const tick = Math.min(1000, Math.max(50, limitMs / 10));
    this.lastTick = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      if (this.run.gate?.isOpen !== false) this.runMs += now - this.lastTick;
      this.lastTick = now;
      if (this.runMs >= limitMs && !this.timedOut) {
        this.timedOut = true;
        this.signalGroup('SIGTERM');
        this.killTimer = setTimeout(() => this.signalGroup('SIGKILL'), this.run.hook.graceSec * 1000);
      }
    }, tick);
  }

  private signalGroup(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined || this.exited) return;
    try {
      process.kill(-pid, sig); // the hook's whole process group: a script's own children go too
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  }

  private failure(what: string, retryable: boolean): ProcessingError {
    const tail = this.stderr.text();
    return new ProcessingError('CARGO_ERR_HOOK_FAILED',
      `hook "${this.run.hook.name}" ${what}${tail ? `; stderr: ${tail}` : ' (no stderr)'}`, { retryable });
  }

  private onClose(code: number | null, signal: NodeJS.Signals | null): void {
    this.exited = true;
    this.stopClock();
    if (this.destroyed) return;
    if (this.timedOut) {
      this.destroy(this.failure(`exceeded its time limit of ${this.run.hook.timeoutSec} s and was killed`, false));
    } else if (code !== 0) {
      const how = code === null ? `was killed by ${signal}` : `exited with status ${code}`;
      this.destroy(this.failure(how, code === EX_TEMPFAIL));
    } else if (this.run.hook.io === 'stream') {
      if (!this.writableFinished) this.destroy(this.failure('exited before reading all of its input', false));
      else this.push(null);
    } else {
      void this.streamOutput();
    }
  }

  private async streamOutput(): Promise<void> {
    const path = join(this.dir!, 'output');
    if (!(await stat(path).then((st) => st.isFile(), () => false))) {
      this.destroy(this.failure('exited 0 but wrote no output file', false));
      return;
    }
    if (this.destroyed) return;
    const out = createReadStream(path);
    this.output = out;
    out.on('data', (c) => {
      if (!this.push(c)) out.pause();
    });
    out.on('end', () => this.push(null));
    out.on('error', (e) => this.destroy(e));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.ready.then(() => {
      const sink = this.run.hook.io === 'stream' ? this.child?.stdin : this.inputFile;
      if (!sink || this.destroyed) return cb();
      if (sink.write(chunk)) cb();
      else sink.once('drain', () => cb());
    }, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.ready.then(() => {
      if (this.run.hook.io === 'stream') {
        this.child?.stdin?.end();
        return cb();
      }
      this.inputFile!.end(() => {
        if (this.destroyed) return cb();
        this.spawnChild([join(this.dir!, 'input'), join(this.dir!, 'output')], 'ignore', 'ignore');
        cb();
      });
    }, cb);
  }

  override _read(): void {
    this.child?.stdout?.resume();
    this.output?.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.stopClock();
    if (this.killTimer) clearTimeout(this.killTimer);
    this.signalGroup('SIGKILL');
    this.child?.stdin?.destroy();
    this.child?.stdout?.destroy();
    this.inputFile?.destroy();
    this.output?.destroy();
    const dir = this.dir;
    if (!dir) return cb(err);
    rm(dir, { recursive: true, force: true }).then(() => cb(err), () => cb(err));
  }

  private stopClock(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.killTimer && this.exited) clearTimeout(this.killTimer);
    this.timer = null;
  }
}
