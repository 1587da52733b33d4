/**
 * REST: recurring exports (`/api/v1/exports…`). The jobs' authorisation model: the owner is the caller's identity,
 * and the caller's principal is what runs submit with; a user sees and acts on their own exports, administrators on
 * all of them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CargoError } from '../../errors/cargo-error.js';
import { ForbiddenError } from '../../services/auth/auth-errors.js';
import { EXPORT_NAME, exportDefinitionSchema, type ExportDefinition } from '../../services/exports/export-definition.js';
import { InvalidExportError } from '../../services/exports/export-errors.js';
import { exportRunSchema, exportViewSchema } from '../api-schemas.js';
import { POLLING_LOG_LEVEL, type GatewayContext } from '../context.js';

const nameParam = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', pattern: EXPORT_NAME } } } as const;
const runParams = {
  type: 'object', additionalProperties: false, required: ['name', 'runId'],
  properties: { name: nameParam.properties.name, runId: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,200}$' } },
} as const;

export async function exportsRoutes(app: FastifyInstance, { ctx }: { ctx: GatewayContext }): Promise<void> {
  const svc = ctx.exports;

  /** The export, if the caller owns it or is an administrator. */
  const ownExport = async (req: FastifyRequest, name: string) => {
    const p = ctx.auth.requireIdentity(req);
    const rec = await svc.store.get(name);
    if (!p.admin && rec.owner !== p.owner) throw new ForbiddenError(`export ${name} belongs to another user`);
    return rec;
  };

  app.get('/exports', {
    logLevel: POLLING_LOG_LEVEL,
    schema: { summary: 'List exports (yours; every export for administrators)', response: { 200: { type: 'object', properties: { exports: { type: 'array', items: exportViewSchema } } } } },
  }, async (req) => {
    const p = ctx.auth.requireIdentity(req);
    const all = await svc.store.list();
    return { exports: await Promise.all(all.filter((r) => p.admin || r.owner === p.owner).map((r) => svc.view(r))) };
  });

  app.post<{ Body: ExportDefinition }>('/exports', {
    schema: { summary: 'Create a recurring export (owned by the caller; runs submit with the caller\'s rights)', body: exportDefinitionSchema, response: { 201: exportViewSchema } },
  }, async (req, reply) => {
    const p = ctx.auth.requireIdentity(req);
    const rec = await svc.create(req.body, p);
    return reply.code(201).header('location', `/api/v1/exports/${rec.definition.name}`).send(await svc.view(rec));
  });

  app.get<{ Params: { name: string } }>('/exports/:name', {
    logLevel: POLLING_LOG_LEVEL,
    schema: { summary: 'An export: definition, state, next run, last run\'s report', params: nameParam, response: { 200: exportViewSchema } },
  }, async (req) => svc.view(await ownExport(req, req.params.name)));

  app.put<{ Params: { name: string }; Body: ExportDefinition }>('/exports/:name', {
    schema: { summary: 'Replace an export\'s definition (its history and sent-files ledger stay)', params: nameParam, body: exportDefinitionSchema, response: { 200: exportViewSchema } },
  }, async (req) => {
    if (req.body.name !== req.params.name) throw new InvalidExportError(`name ${req.body.name} differs from the URL's ${req.params.name}`, 'name');
    const old = await ownExport(req, req.params.name);
    const p = ctx.auth.requireIdentity(req);
    // An administrator replacing someone's export does not take it over: the owner's rights stay.
    const rec = await svc.create(req.body, old.owner === p.owner ? p : old.principal, true);
    return svc.view(rec);
  });

  app.delete<{ Params: { name: string } }>('/exports/:name', {
    schema: { summary: 'Delete an export, its schedule, history and ledger (jobs it submitted keep running)', params: nameParam, response: { 204: { type: 'null' } } },
  }, async (req, reply) => {
    await ownExport(req, req.params.name);
    await svc.remove(req.params.name);
    return reply.code(204).send();
  });

  for (const op of ['pause', 'resume'] as const) {
    app.post<{ Params: { name: string } }>(`/exports/:name/${op}`, {
      schema: { summary: op === 'pause' ? 'Pause an export: no more scheduled runs (a running one finishes)' : 'Resume a paused export\'s schedule', params: nameParam, response: { 200: exportViewSchema } },
    }, async (req) => {
      await ownExport(req, req.params.name);
      return svc.view(await svc.setPaused(req.params.name, op === 'pause'));
    });
  }

  app.post<{ Params: { name: string } }>('/exports/:name/run', {
    schema: { summary: 'Run an export now (skipped if a run of it is still going)', params: nameParam, response: { 202: { type: 'object', properties: { runId: { type: 'string' } } } } },
  }, async (req, reply) => {
    await ownExport(req, req.params.name);
    return reply.code(202).send(await svc.runNow(req.params.name));
  });

  app.get<{ Params: { name: string }; Querystring: { limit?: string } }>('/exports/:name/runs', {
    logLevel: POLLING_LOG_LEVEL,
    schema: {
      summary: 'Run reports of an export, newest first', params: nameParam,
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^[0-9]{1,5}$' } } },
      response: { 200: { type: 'object', properties: { runs: { type: 'array', items: exportRunSchema } } } },
    },
  }, async (req) => {
    await ownExport(req, req.params.name);
    return { runs: await svc.store.history(req.params.name, Math.min(1000, Number(req.query.limit ?? 20)) || 20) };
  });

  app.get<{ Params: { name: string; runId: string } }>('/exports/:name/runs/:runId', {
    logLevel: POLLING_LOG_LEVEL,
    schema: { summary: 'One run\'s report', params: runParams, response: { 200: exportRunSchema } },
  }, async (req) => {
    await ownExport(req, req.params.name);
    const r = await svc.store.getRun(req.params.runId);
    if (!r || r.export !== req.params.name) throw new CargoError('CARGO_ERR_EXPORT_NOT_FOUND', `export ${req.params.name} has no run ${req.params.runId}`, { field: 'runId' });
    return r;
  });
}
