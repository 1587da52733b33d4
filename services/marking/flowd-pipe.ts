/**
 * The flowd / flowd-go named-pipe backend: one line per flow event, exactly
 * `start tcp SRC SPORT DST DPORT EXP ACT` / `end tcp …` and a newline (specs/scitags.md §5.1, §5.2; StoRM writes the
 * same). The path must already be a FIFO the daemon reads: we never create it (StoRM's RandomAccessFile would
 * leave a regular file behind), and open it non-blocking so a stopped daemon costs a dropped line, not a stuck
 * transfer. A line is far below PIPE_BUF, so concurrent writers never interleave.
 */
import { closeSync, constants as fsConstants, openSync, statSync, writeSync } from 'node:fs';

export class FlowdPipe {
  written = 0;
  dropped = 0;
  /** Why the pipe cannot be written now (undefined = it can, or has not been tried). */
  reason?: string;
  private fd?: number;

  constructor(readonly path: string) {}

  write(state: 'start' | 'end', src: string, sport: number, dst: string, dport: number, exp: number, act: number): void {
    const line = `${state} tcp ${src} ${sport} ${dst} ${dport} ${exp} ${act}\n`;
    const fd = this.open();
    if (fd === undefined) {
      this.dropped++;
      return;
    }
    try {
      writeSync(fd, line);
      this.written++;
      this.reason = undefined;
    } catch (e) {
      this.dropped++;
      const code = (e as NodeJS.ErrnoException).code;
      this.reason = code === 'EAGAIN' ? 'pipe full (the daemon is not reading)' : `write failed: ${code ?? (e as Error).message}`;
      // EPIPE: the reader went away; open again next time (a restarted daemon makes a new reader).
      if (code !== 'EAGAIN') this.close();
    }
  }

  private open(): number | undefined {
    if (this.fd !== undefined) return this.fd;
    try {
      if (!statSync(this.path).isFIFO()) {
        this.reason = `${this.path} is not a named pipe`;
        return undefined;
      }
      this.fd = openSync(this.path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      return this.fd;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      this.reason = code === 'ENXIO' ? `no reader on ${this.path} (is flowd running?)` : `${this.path}: ${code ?? (e as Error).message}`;
      return undefined;
    }
  }

  close(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch { /* already gone */ }
      this.fd = undefined;
    }
  }
}
