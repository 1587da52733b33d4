/**
 * `cargoport scitags [EXPERIMENT]`: the scitags registry the port marks with — every experiment and activity
 * with its ids and flow id (experiment << 6 | activity, what `scitag` in a job and the SciTag header carry) and
 * the IPv6 flow label it becomes (entropy bits 0). The bundled copy, or with --refresh the one at
 * marking.registryUrl (or --registry-url).
 */
import { bundledRegistry, fetchRegistry, type ScitagsRegistry } from '../../services/marking/registry.js';
import { flowIdOf, flowLabelOf } from '../../services/marking/flow-id.js';
import { expectPositionals, loadConfigFor, printJson, type Command } from '../command.js';
import { UsageError } from '../usage-error.js';

export const scitagsCommand: Command = {
  name: 'scitags',
  args: '[EXPERIMENT]',
  summary: 'list the scitags registry: experiments, activities, flow ids and flow labels',
  options: { json: { type: 'boolean' }, refresh: { type: 'boolean' }, 'registry-url': { type: 'string' } },
  optionHelp: [
    '--refresh             fetch the registry from marking.registryUrl (or --registry-url) instead of the bundled copy',
    '--registry-url URL    registry to fetch with --refresh',
    '--json                print the registry document',
  ],
  async run(ctx) {
    expectPositionals(ctx, 0, 1, '');
    let registry: ScitagsRegistry = bundledRegistry;
    if (ctx.values.refresh) {
      const url = (ctx.values['registry-url'] as string | undefined) ?? loadConfigFor(ctx).marking.registryUrl;
      if (!url) throw new UsageError('--refresh needs marking.registryUrl or --registry-url', 'registry-url');
      registry = await fetchRegistry(url);
    }
    const only = ctx.positionals[0];
    const onlyId = only === undefined ? undefined : registry.experimentId(only);
    if (only !== undefined && onlyId === undefined) throw new UsageError(`experiment ${only} is not in the registry`, 'EXPERIMENT');
    const experiments = registry.experiments().filter((e) => onlyId === undefined || e.expId === onlyId);
    if (ctx.values.json) {
      printJson(ctx, { origin: registry.origin, modified: registry.modified, experiments });
      return 0;
    }
    const lines = [`registry: ${registry.origin}${registry.modified ? ` (modified ${registry.modified})` : ''}`];
    for (const e of experiments) {
      lines.push(`${e.expName} (experiment ${e.expId})`);
      for (const a of e.activities) {
        const tag = { experiment: e.expId, activity: a.activityId };
        const label = `0x${flowLabelOf(tag).toString(16).padStart(5, '0')}`;
        lines.push(`  ${String(a.activityId).padStart(2)}  flow id ${String(flowIdOf(tag)).padStart(5)}  label ${label}  ${a.activityName}`);
      }
    }
    ctx.out.write(lines.join('\n') + '\n');
    return 0;
  },
};
