/**
 * Runs a peer command under /usr/bin/time, so a benchmark gets its wall time, its own CPU (user + system) and
 * its peak RSS, whatever else the machine is doing; `input` is written to its stdin.
 */
import { execFile } from 'node:child_process';

export interface TimedRun {
  secs: number;
  cpu: number;
  peakRssKb: number;
  stdout: string;
}

export async function timedChild(cmd: string, args: string[], input?: string): Promise<TimedRun> {
  const child = execFile('/usr/bin/time', ['-f', 'TIME %e %U %S %M', cmd, ...args], { maxBuffer: 1 << 26 });
  if (input !== undefined) {
    child.stdin!.on('error', () => undefined); // a child that exits early reports through its exit code
    child.stdin!.end(input);
  }
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: string) => { stdout += c; });
  child.stderr!.on('data', (c: string) => { stderr += c; });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(stderr);
  if (code !== 0 || !m) throw new Error(`${cmd} failed (${code}): ${stderr.slice(-2000)}`);
  return { secs: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), peakRssKb: Number(m[4]), stdout };
}
