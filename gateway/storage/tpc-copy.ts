import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem, type StorageContext } from './storage-context.js';
export async function handleCopy(_ctx: StorageContext, _request: FastifyRequest, reply: FastifyReply): Promise<void> {
  return void sendProblem(reply, 501, 'COPY not implemented yet');
}
