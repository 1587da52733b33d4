/**
 * `cargoport` command-line entry: finds the subcommand, parses its options with node:util parseArgs
 * (strict: unknown options are errors), runs it, and turns errors into one line and an exit status:
 * 0 ok, 1 failure (API error, unreachable gateway, bad config), 2 usage error.
 */
import { parseArgs } from 'node:util';
import { isCargoError } from '../errors/cargo-error.js';
import { ApiError } from './api-client.js';
import { adminCommand } from './commands/admin.js';
import { filesCommand, retryCommand } from './commands/files.js';
import { exportsCommand } from './commands/exports.js';
import { cancelCommand, jobsCommand } from './commands/jobs.js';
import { gatewayCommand, serveCommand, workerCommand } from './commands/serve.js';
import { probeCommand } from './commands/probe.js';
import { statusCommand } from './commands/status.js';
import { submitCommand } from './commands/submit.js';
import { scitagsCommand } from './commands/scitags.js';
import { tokenCommand } from './commands/token.js';
import { shareCommand, sharesCommand } from './commands/share.js';
import type { Command, CommandContext, OptionSpecs } from './command.js';
import { UsageError } from './usage-error.js';

export const commands: readonly Command[] = [
  serveCommand, gatewayCommand, workerCommand, submitCommand, jobsCommand, statusCommand, filesCommand, retryCommand, cancelCommand, adminCommand, exportsCommand, probeCommand, scitagsCommand, tokenCommand, shareCommand, sharesCommand,
];

const globalOptions: OptionSpecs = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
};
/** Global options that take a value, so their value is not mistaken for the subcommand. */
const GLOBAL_WITH_VALUE = new Set(['--config', '-c']);

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: cargoport [--config FILE] COMMAND [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'global options:',
    '  --config FILE, -c FILE   YAML settings over config/default.yaml (CARGOPORT_* variables override both)',
    '  --help, -h               this text, or `cargoport COMMAND --help`',
  ].join('\n');
}

function commandUsage(c: Command): string {
  return [`usage: cargoport [--config FILE] ${c.name}${c.args ? ' ' + c.args : ''}`, '', c.summary, ...(c.optionHelp.length ? ['', 'options:', ...c.optionHelp.map((l) => '  ' + l)] : [])].join('\n');
}

/** Index of the subcommand in argv: the first word that is neither an option nor a global option's value. */
function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (GLOBAL_WITH_VALUE.has(a)) {
      i++;
      continue;
    }
    if (a === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (!a.startsWith('-')) return i;
  }
  return -1;
}

function parseErrorMessage(e: unknown): string {
  // parseArgs messages are long and mention "positional"; keep the part a user needs.
  return (e as Error).message.replace(/\. To specify a positional argument starting with a '-'.*$/s, '');
}

/**
 * The operating system's refusals a user can act on are one line, not a stack: a port in use, a port or file
 * that needs other rights, an address not on this host.
 */
function systemErrorLine(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = err.address !== undefined ? `${err.address}${err.port !== undefined ? ':' + err.port : ''}` : err.path;
  switch (err?.code) {
    case 'EADDRINUSE': return `cannot listen on ${where}: the address is in use by another process (choose another gateway.port, or stop the other process)`;
    case 'EADDRNOTAVAIL': return `cannot listen on ${where}: no such address on this host (gateway.host)`;
    case 'EACCES': return `permission denied: ${where ?? err.message}${err.port !== undefined && err.port < 1024 ? ' (ports below 1024 need privileges)' : ''}`;
    default: return undefined;
  }
}

/**
 * A reader that goes away (`cargoport status | head`) makes the next write fail with EPIPE: that is the reader's
 * choice, not an error to report with a stack, so the command ends quietly with status 0.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  if (stream.listenerCount('error') > 0) return;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

export async function main(argv: readonly string[], out: CommandContext['out'] = process.stdout): Promise<number> {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  const at = commandIndex(argv);
  const name = at >= 0 ? argv[at]! : undefined;
  const rest = at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 1)] : [...argv];
  const command = name === 'help' ? undefined : commands.find((c) => c.name === name);

  if (name === undefined || name === 'help') {
    const topic = name === 'help' ? commands.find((c) => c.name === rest.find((a) => !a.startsWith('-'))) : undefined;
    const helpAsked = name === 'help' || rest.includes('--help') || rest.includes('-h');
    (helpAsked ? process.stdout : process.stderr).write((topic ? commandUsage(topic) : usage()) + '\n');
    return helpAsked ? 0 : 2;
  }
  if (!command) {
    process.stderr.write(`cargoport: unknown command "${name}"\n${usage()}\n`);
    return 2;
  }

  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...globalOptions, ...command.options }, allowPositionals: true, strict: true });
  } catch (e) {
    process.stderr.write(`cargoport ${command.name}: ${parseErrorMessage(e)}\n(see \`cargoport ${command.name} --help\`)\n`);
    return 2;
  }
  if (parsed.values.help) {
    out.write(commandUsage(command) + '\n');
    return 0;
  }
  const ctx: CommandContext = {
    values: parsed.values as CommandContext['values'],
    positionals: parsed.positionals,
    configFile: parsed.values.config as string | undefined,
    out,
  };
  try {
    return await command.run(ctx);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`cargoport ${command.name}: ${e.message}\n(see \`cargoport ${command.name} --help\`)\n`);
      return 2;
    }
    // Known errors are one line (ApiError is already `title: detail`); anything else is a bug: show the stack.
    if (e instanceof ApiError) {
      process.stderr.write(`${e.message}\n`);
      return 1;
    }
    const systemLine = systemErrorLine(e);
    process.stderr.write(isCargoError(e) ? `cargoport ${command.name}: ${e.message}\n` : `cargoport ${command.name}: ${systemLine ?? (e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}
