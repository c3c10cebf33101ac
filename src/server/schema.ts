// schema.ts — JSON schemas of the request bodies and the formatter that turns
// validation failures into one clear 400 message ("body.timeout_seconds must be
// <= 300"). Validation is strict: no type coercion, unknown fields rejected.
import { LANGUAGES } from '../engine/types.js';
import type { ServerConfig } from './config.js';

export const DEFAULT_TIMEOUT_SECONDS = 30;

/** Languages other sandboxes (and Zeroboot clients) name that this server does not run yet. */
export const UNSUPPORTED_LANGUAGES = ['node', 'nodejs', 'javascript', 'js', 'typescript', 'ts', 'bash', 'sh', 'shell', 'ruby', 'go', 'rust'] as const;

/** A template's name (python-data, a user's recipe): unknown ones are the route's 404. */
export const TEMPLATE_NAME = { type: 'string', pattern: '^[a-z][a-z0-9-]{0,47}$' };

export function execSchema(cfg: ServerConfig): Record<string, unknown> {
  return {
    type: 'object',
    required: ['code'],
    additionalProperties: false,
    properties: {
      code: { type: 'string' },
      // Known names outside LANGUAGES pass the schema and get 501 Unsupported from the route.
      language: { type: 'string', enum: [...LANGUAGES, ...UNSUPPORTED_LANGUAGES.filter((l) => !LANGUAGES.includes(l))], default: 'python' },
      template: TEMPLATE_NAME,
      timeout_seconds: {
        type: 'number',
        exclusiveMinimum: 0,
        maximum: cfg.maxTimeoutSeconds,
        default: Math.min(DEFAULT_TIMEOUT_SECONDS, cfg.maxTimeoutSeconds),
      },
      env: {
        type: 'object',
        maxProperties: 256,
        propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' },
        additionalProperties: { type: 'string' },
      },
      stdin: { type: 'string' },
    },
  };
}

export function batchSchema(cfg: ServerConfig): Record<string, unknown> {
  return {
    type: 'object',
    required: ['executions'],
    additionalProperties: false,
    properties: {
      executions: { type: 'array', minItems: 1, maxItems: cfg.maxBatch, items: execSchema(cfg) },
    },
  };
}

export interface ExecBody {
  code: string;
  language: string;
  template?: string;
  timeout_seconds: number;
  env?: Record<string, string>;
  stdin?: string;
}

export interface BatchBody { executions: ExecBody[] }

/** The subset of an Ajv error object the formatter reads. */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  message?: string;
  /** Set by Ajv on errors raised while checking propertyNames. */
  propertyName?: string;
  params: Record<string, unknown>;
}

/** One readable sentence for the first validation error. */
export function formatSchemaErrors(errors: readonly SchemaError[], dataVar: string): Error {
  const e = errors[0];
  if (!e) return new Error(`${dataVar} is invalid`);
  const path = dataVar + e.instancePath.replace(/\//g, '.').replace(/\.(\d+)(?=\.|$)/g, '[$1]');
  let msg: string;
  const propertyName = e.propertyName ?? e.params.propertyName;
  if (propertyName !== undefined) {
    return new Error(`${path} has an invalid variable name "${String(propertyName)}" (letters, digits, _; not starting with a digit)`);
  }
  switch (e.keyword) {
    case 'required':
      msg = `${path} is missing required field "${String(e.params.missingProperty)}"`;
      break;
    case 'additionalProperties':
      msg = `${path} has unknown field "${String(e.params.additionalProperty)}"`;
      break;
    case 'enum':
      msg = `${path} must be one of: ${(e.params.allowedValues as unknown[]).filter((v) => !(UNSUPPORTED_LANGUAGES as readonly unknown[]).includes(v)).map(String).join(', ')}`;
      break;
    case 'type':
      msg = `${path} must be ${String(e.params.type).replace(/^([aeiou])/, 'an $1').replace(/^(?!an )/, 'a ')}`;
      break;
    default:
      msg = `${path} ${e.message ?? 'is invalid'}`;
  }
  return new Error(msg);
}

const labels = {
  type: 'object',
  maxProperties: 64,
  propertyNames: { pattern: '^[A-Za-z0-9_.:/-]{1,128}$' },
  additionalProperties: { type: 'string', maxLength: 1024 },
};

/** POST /v1/sessions. */
export function sessionCreateSchema(cfg: ServerConfig): Record<string, unknown> {
  const env = (execSchema(cfg).properties as Record<string, unknown>).env;
  return {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: {
      language: { type: 'string', enum: [...LANGUAGES, ...UNSUPPORTED_LANGUAGES.filter((l) => !LANGUAGES.includes(l))] },
      template: TEMPLATE_NAME,
      name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' },
      timeout_seconds: { type: 'integer', minimum: 1, maximum: cfg.maxSessionTimeoutSeconds },
      idle_timeout_seconds: { type: 'integer', minimum: 1, maximum: cfg.maxSessionIdleTimeoutSeconds },
      env,
      metadata: labels,
    },
  };
}

/** POST /v1/sessions/{id}/exec: /v1/exec's body with an optional language, plus discard; `command` is accepted to answer 501. */
export function sessionExecSchema(cfg: ServerConfig): Record<string, unknown> {
  const base = execSchema(cfg);
  const props = { ...(base.properties as Record<string, Record<string, unknown>>) };
  const { default: _d, ...language } = props.language!;
  return {
    ...base,
    required: [],
    properties: { ...props, language, discard: { type: 'boolean' }, command: { type: 'string' } },
  };
}

export function forkSchema(cfg: ServerConfig): Record<string, unknown> {
  return {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: { count: { type: 'integer', minimum: 1, maximum: cfg.maxForkCount, default: 1 } },
  };
}

export interface SessionCreateBody {
  language?: string;
  template?: string;
  name?: string;
  timeout_seconds?: number;
  idle_timeout_seconds?: number;
  env?: Record<string, string>;
  metadata?: Record<string, string>;
}

export interface SessionExecBody extends Omit<ExecBody, 'code' | 'language'> {
  code?: string;
  language?: string;
  discard?: boolean;
  command?: string;
}

export const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' } },
};

/** Query of the file routes: path is required and checked by the route (absolute, normalized). */
export const fileQuery = {
  type: 'object',
  required: ['path'],
  additionalProperties: false,
  properties: {
    path: { type: 'string', minLength: 1, maxLength: 4096 },
    mode: { type: 'string', pattern: '^0?[0-7]{1,4}$' },
    parents: { type: 'string', enum: ['true', 'false'] },
    recursive: { type: 'string', enum: ['true', 'false'] },
    delete: { type: 'string', enum: ['true', 'false'] },
  },
};

export interface FileQuery { path: string; mode?: string; parents?: string; recursive?: string; delete?: string }
