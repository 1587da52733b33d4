/**
 * JSON schema of a job submission (POST /api/v1/jobs). The gateway validates the body with it before
 * anything else; `normaliseSubmission` then does the checks a schema cannot express (URL syntax, supported
 * schemes, checksum syntax) and fills defaults. Unknown fields are rejected, never silently dropped.
 */
import { processingJsonSchema } from '../processing/processing-spec.js';
import type { ProcessingParams } from './model.js';

export const SUPPORTED_SCHEMES = ['https:', 'http:', 'file:'] as const;

/** A file's own processing: the job's envelope without `pack` (packing is a job's choice). */
const fileProcessingSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { emission: processingJsonSchema.properties.emission, reception: processingJsonSchema.properties.reception },
} as const;

const fileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['source', 'destination'],
  properties: {
    source: { type: 'string', minLength: 1, maxLength: 8192 },
    destination: { type: 'string', minLength: 1, maxLength: 8192 },
    checksum: { type: 'string', minLength: 1, maxLength: 200, description: 'ALG[:VALUE], e.g. adler32:03da0195' },
    size: { type: 'integer', minimum: 0 },
    scitag: { type: 'integer', minimum: 65, maximum: 65535 },
    activity: { type: 'string', maxLength: 128 },
    metadata: { type: 'object', maxProperties: 64 },
    processing: fileProcessingSchema,
  },
} as const;

export const paramsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    priority: { type: 'integer', minimum: 1, maximum: 5 },
    retries: { type: 'integer', minimum: 0, maximum: 100 },
    retryDelaySec: { type: 'integer', minimum: 0, maximum: 86400 },
    verifyChecksum: { type: 'string', enum: ['none', 'source', 'destination', 'both'] },
    overwrite: { type: 'boolean' },
    existing: { type: 'string', enum: ['fail', 'overwrite', 'skip-identical'] },
    streams: { type: 'integer', minimum: 1, maximum: 256 },
    connections: { type: 'integer', minimum: 1, maximum: 64 },
    bandwidthBytesPerSec: { type: 'integer', minimum: 1 },
    processing: processingJsonSchema,
    maxTimeInQueueSec: { type: 'integer', minimum: 1 },
    copyMode: { type: 'string', enum: ['auto', 'pull', 'push', 'streamed'] },
    contentEncoding: { type: 'string', enum: ['keep', 'decode'] },
    experiment: { type: 'string', minLength: 1, maxLength: 64, description: 'scitags experiment (registry name or id); with each file\'s activity (default: default) it becomes the file\'s scitag when it gives none' },
  },
} as const;

export const submissionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['files'],
  properties: {
    files: { type: 'array', minItems: 1, items: fileSchema },
    params: paramsSchema,
  },
} as const;

export interface RawSubmission {
  files: Array<{
    source: string;
    destination: string;
    checksum?: string;
    size?: number;
    scitag?: number;
    activity?: string;
    metadata?: Record<string, unknown>;
    processing?: ProcessingParams;
  }>;
  params?: {
    priority?: number;
    retries?: number;
    retryDelaySec?: number;
    verifyChecksum?: 'none' | 'source' | 'destination' | 'both';
    overwrite?: boolean;
    existing?: 'fail' | 'overwrite' | 'skip-identical';
    streams?: number;
    connections?: number;
    bandwidthBytesPerSec?: number;
    processing?: ProcessingParams;
    maxTimeInQueueSec?: number;
    copyMode?: 'auto' | 'pull' | 'push' | 'streamed';
    contentEncoding?: 'keep' | 'decode';
    experiment?: string;
  };
}
