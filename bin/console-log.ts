/**
 * The process shell's own log lines (start-up, embedded Redis, shutdown) on stderr, so stdout stays for what
 * scripts read (the URL, a job id). The gateway and workers keep their own structured loggers.
 */
import type { Config } from '../config/schema.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
type Level = (typeof LEVELS)[number];

export interface ConsoleLog {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function consoleLog(level: Config['logLevel'], name = 'cargoport'): ConsoleLog {
  const min = level === 'silent' ? Infinity : LEVELS.indexOf(level);
  const at = (l: Level) => (msg: string) => {
    if (LEVELS.indexOf(l) >= min) process.stderr.write(`${new Date().toISOString()} ${l.toUpperCase()} ${name}: ${msg}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
