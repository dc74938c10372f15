/**
 * OpenAI's `POST /v1/audio/translations`: speech in any language Whisper knows → English text, answered
 * synchronously like a transcription in OpenAI mode. It needs a multilingual model: an OpenAI name (`whisper-1`)
 * runs on the first installed one; a Dalston model id must name one. When none is installed the answer is a 400
 * saying which to install, before anything is stored.
 */
import { CATALOGUE } from '../engines/models/catalogue.js';
import { HttpError, badRequest } from './errors.js';
import { admitJob } from './job-admission.js';
import type { AuthedRequestContext, RouteSpec } from './http-server.js';
import { jobAudioSink, parseWithInstalledModels, queueJob, type TranscriptionsDeps } from './transcriptions.js';
import { receiveUpload } from './upload.js';

export const TRANSLATIONS_PATH = '/v1/audio/translations';
/** OpenAI's translation fields; `language` is not one (the target is English). */
const FIELDS = new Set(['model', 'prompt', 'response_format', 'temperature']);

/** Catalogue ASR models that know more than one language (Whisper multilingual). */
const MULTILINGUAL = new Set(CATALOGUE.filter((m) => m.task === 'asr' && m.languages.length > 1).map((m) => m.id));

async function translate(deps: TranscriptionsDeps, ctx: AuthedRequestContext): Promise<void> {
  if (!deps.openAi) throw new HttpError(501, 'not_implemented', 'OpenAI-compatible synchronous answers are not available on this server');
  await admitJob(deps.admission, ctx.req);
  const sink = jobAudioSink(deps, ctx);
  const upload = await receiveUpload(ctx.req, {
    maxFileBytes: deps.uploadMaxBytes, sink,
    validateFields: (fields) => {
      for (const [name] of fields) if (!FIELDS.has(name)) throw badRequest(`unknown field "${name}"; accepted: file, ${[...FIELDS].join(', ')}`);
      if (!fields.some(([name]) => name === 'model')) throw badRequest('model is required (e.g. whisper-1)');
    },
  });
  let request;
  let chosen: string;
  try {
    request = await parseWithInstalledModels(deps, upload.fields);
    const installed = new Set(await (deps.installedModels?.() ?? Promise.resolve([])));
    const candidates = [...MULTILINGUAL].filter((id) => installed.has(id));
    const pick = request.params.model ?? candidates[0];
    if (pick === undefined) {
      throw badRequest(`no installed model can translate: install a multilingual Whisper model (${[...MULTILINGUAL].join(', ')}), e.g. \`node dist/engines/models/install-main.js --only whisper-base\``);
    }
    if (!MULTILINGUAL.has(pick)) throw badRequest(`model "${pick}" is English-only and cannot translate; multilingual: ${[...MULTILINGUAL].join(', ')}`);
    if (!installed.has(pick)) throw badRequest(`model "${pick}" is not installed here`);
    chosen = pick;
  } catch (err) {
    await sink.discard();
    throw err;
  }
  const created = await queueJob(deps, ctx, sink, { ...request.params, model: chosen, api: 'openai', task: 'translate' });
  await deps.openAi.respond(ctx, created, { ...(request.openAi ?? { responseFormat: 'json', words: false }), translate: true });
}

export function translationRoutes(deps: TranscriptionsDeps): RouteSpec[] {
  return [{ method: 'POST', path: TRANSLATIONS_PATH, auth: 'api_key', handler: (ctx) => translate(deps, ctx) }];
}
