/**
 * `GET /v1/models`: the recognisers of the model catalogue and whether this machine has them installed (their
 * files verify). A job may name any of them as `model`; an unknown model is a 400 at submission, never a silent
 * fallback to another engine.
 */
import { ConfigError } from '../core/errors.js';
import { CATALOGUE, batchEngineId, type ModelSpec } from '../engines/models/catalogue.js';
import { verifyModel } from '../engines/models/verify.js';
import { sendJson } from './http-exchange.js';
import type { RouteSpec } from './http-server.js';

export interface ModelListing {
  readonly id: string;
  readonly engine_id: string;
  readonly backend: string;
  readonly languages: readonly string[];
  readonly capabilities: ModelSpec['capabilities'];
  readonly installed: boolean;
  readonly description: string;
}

/** Model ids a job may name (besides `auto` and the OpenAI aliases). */
export const ASR_MODEL_IDS: ReadonlySet<string> = new Set(CATALOGUE.filter((m) => m.task === 'asr').map((m) => m.id));

export async function listModels(homeDir: string): Promise<ModelListing[]> {
  return Promise.all(
    CATALOGUE.filter((m) => m.task === 'asr').map(async (m) => ({
      id: m.id, engine_id: batchEngineId(m), backend: m.backend, languages: m.languages, capabilities: m.capabilities,
      installed: await verifyModel(m.id, homeDir).then(() => true, () => false), description: m.description,
    })),
  );
}

/**
 * Ids of the ASR models installed under homeDir (named in the answer to an unknown model). Verifying a model hashes
 * its files (hundreds of MB, about a second), so requests never wait for it after the first listing: an answer older
 * than `reuseMs` is still given while a fresh one is made in the background, and a stream of bad requests cannot
 * make the gateway hash the files again and again. Call it once at start to warm it.
 */
export function installedModelIds(homeDir: string, reuseMs = 60_000): () => Promise<readonly string[]> {
  let current: { readonly at: number; readonly ids: Promise<readonly string[]> } | undefined;
  let refreshing = false;
  const list = (): Promise<readonly string[]> => listModels(homeDir).then((ms) => ms.filter((m) => m.installed).map((m) => m.id));
  return () => {
    if (!current) {
      const ids = list();
      current = { at: Date.now(), ids };
      // A failed listing is not kept: the next caller tries again.
      ids.catch(() => (current = undefined));
      return ids;
    }
    if (Date.now() - current.at > reuseMs && !refreshing) {
      refreshing = true;
      const next = list();
      next.then((ids) => (current = { at: Date.now(), ids: Promise.resolve(ids) }), () => undefined).finally(() => (refreshing = false));
    }
    return current.ids;
  };
}

/** DALSTON_OPENAI_MODEL_ALIASES with every target checked: `auto` or a catalogue model (start-up refuses others). */
export function checkedAliases(aliases: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  for (const [alias, target] of aliases) {
    if (target !== 'auto' && !ASR_MODEL_IDS.has(target)) {
      throw new ConfigError(`DALSTON_OPENAI_MODEL_ALIASES maps "${alias}" to "${target}", which is not a model id (${[...ASR_MODEL_IDS].join(', ')}) or auto`);
    }
    if (ASR_MODEL_IDS.has(alias)) throw new ConfigError(`DALSTON_OPENAI_MODEL_ALIASES: "${alias}" is already a model id and cannot be an alias`);
  }
  return aliases;
}

export function modelRoutes(homeDir: string): RouteSpec[] {
  return [{
    method: 'GET', path: '/v1/models', auth: 'api_key',
    handler: async (ctx) => sendJson(ctx.res, 200, { models: await listModels(homeDir) }),
  }];
}
