/**
 * `GET /v1/models`: the recognisers of the model catalogue and whether this machine has them installed (their
 * files verify). A job may name any of them as `model`; an unknown model is a 400 at submission, never a silent
 * fallback to another engine.
 */
import { ConfigError } from '../core/errors.js';
import { CATALOGUE, batchEngineId, type ModelSpec } from '../engines/models/catalogue.js';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CONVERSION_MANIFEST, modelDir, verifyModel } from '../engines/models/verify.js';
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

function listing(m: ModelSpec, installed: boolean): ModelListing {
  return { id: m.id, engine_id: batchEngineId(m), backend: m.backend, languages: m.languages, capabilities: m.capabilities, installed, description: m.description };
}

/** Size and modification time of every file in a model's directory (and the directory's own): cheap to take. */
async function fingerprint(m: ModelSpec, homeDir: string): Promise<string> {
  const dir = modelDir(m, homeDir);
  const names = [...m.files.map((f) => f.name), ...(m.conversion ? [CONVERSION_MANIFEST, ...m.conversion.outputs] : [])];
  const parts = await Promise.all(['.', ...names].map(async (n) => {
    const st = await stat(join(dir, n)).catch(() => undefined);
    return st ? `${n}:${st.size}:${st.mtimeMs}` : `${n}:-`;
  }));
  return parts.join('|');
}

/**
 * The ASR models installed under homeDir, for `GET /v1/models` and for refusing jobs no engine here can run.
 * Verifying a model hashes its files (hundreds of MB, about a second), so each model is verified once, and again
 * only when its files change (size or modification time); a request costs a few stat calls. Concurrent callers
 * share one check. Call `installed()` once at start to warm it.
 */
export class ModelInventory {
  readonly #homeDir: string;
  readonly #verify: (id: string, homeDir: string) => Promise<unknown>;
  readonly #known = new Map<string, { readonly fingerprint: string; readonly installed: boolean }>();
  #checking: Promise<ModelListing[]> | undefined;

  /** `verify` hashes a model's files (throws when they are not sound); tests count its calls. */
  constructor(homeDir: string, verify: (id: string, homeDir: string) => Promise<unknown> = verifyModel) {
    this.#homeDir = homeDir;
    this.#verify = verify;
  }

  /** Every catalogue recogniser with its installed flag. */
  list(): Promise<ModelListing[]> {
    this.#checking ??= this.#check().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  /** Ids of the installed recognisers. */
  async installed(): Promise<readonly string[]> {
    return (await this.list()).filter((m) => m.installed).map((m) => m.id);
  }

  async #check(): Promise<ModelListing[]> {
    const out: ModelListing[] = [];
    for (const m of CATALOGUE.filter((x) => x.task === 'asr')) {
      const print = await fingerprint(m, this.#homeDir);
      let known = this.#known.get(m.id);
      if (known?.fingerprint !== print) {
        known = { fingerprint: print, installed: await this.#verify(m.id, this.#homeDir).then(() => true, () => false) };
        this.#known.set(m.id, known);
      }
      out.push(listing(m, known.installed));
    }
    return out;
  }
}

/** The catalogue model a transcribe engine runs, or undefined for an engine id of no recogniser. */
export function modelOfEngine(engineId: string): string | undefined {
  return CATALOGUE.find((m) => m.task === 'asr' && batchEngineId(m) === engineId)?.id;
}

/**
 * Why a job cannot run here, or undefined: the model it names (or the default one) is not installed, so no engine
 * would ever take its transcribe task; or the model does not know the language asked for. Pure.
 */
export function unservableReason(
  params: { readonly model?: string | undefined; readonly language?: string | undefined },
  installed: readonly string[], defaultModel: string | undefined,
): string | undefined {
  const model = params.model ?? defaultModel;
  if (model === undefined) return undefined;
  if (!installed.includes(model)) {
    const named = params.model !== undefined ? `model "${model}"` : `the default model "${model}"`;
    return `${named} is not installed on this server, so no engine here can run it; installed: ${installed.length > 0 ? installed.join(', ') : 'none'}`;
  }
  const spec = CATALOGUE.find((m) => m.id === model);
  const language = params.language;
  if (spec && language !== undefined && language !== 'auto' && spec.languages.length > 0 && !spec.languages.includes(language)) {
    const others = CATALOGUE.filter((m) => m.task === 'asr' && installed.includes(m.id) && m.languages.includes(language)).map((m) => m.id);
    return `model "${model}" transcribes ${spec.languages.length > 8 ? `${spec.languages.length} languages` : spec.languages.join(', ')}, not "${language}"`
      + (others.length > 0 ? `; installed models that do: ${others.join(', ')}` : '; no installed model here does');
  }
  return undefined;
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

export function modelRoutes(inventory: ModelInventory): RouteSpec[] {
  return [{
    method: 'GET', path: '/v1/models', auth: 'api_key',
    handler: async (ctx) => sendJson(ctx.res, 200, { models: await inventory.list() }),
  }];
}
