/**
 * CPU seconds (user + system) of other processes, from /proc/<pid>/stat, so a benchmark can say where the
 * machine's cores went during a phase: the peer server (nginx workers), redis-server, the client.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SEC = 100; // USER_HZ on Linux

export function cpuSecondsOf(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields after the command name (which may hold spaces): state is field 3; utime, stime are 14 and 15.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch { /* the process has gone */ }
  }
  return ticks / TICKS_PER_SEC;
}

/** Direct children of `pid` (nginx's workers under its master). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const list = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (list) out.push(...list.split(' ').map(Number));
  }
  return out;
}
