/**
 * The vendor dialects the gateway serves beside its native one, for registration in one line. Each adapter is
 * pure translation over the dialect seam (../dialect.ts); docs/realtime-dialects.md says what each supports.
 */
import type { RealtimeDialectAdapter } from '../dialect.js';
import { deepgramDialect } from './deepgram.js';
import { elevenLabsDialect } from './elevenlabs.js';
import { openAiDialect } from './openai.js';

export { deepgramDialect, createDeepgramDialect, DEEPGRAM_PATH } from './deepgram.js';
export { elevenLabsDialect, ELEVENLABS_PATH } from './elevenlabs.js';
export { openAiDialect, OPENAI_PATH } from './openai.js';

/** ElevenLabs `/v1/speech-to-text/realtime`, OpenAI `/v1/realtime`, Deepgram `/v1/listen`. */
export const VENDOR_DIALECTS: readonly RealtimeDialectAdapter<unknown>[] = [elevenLabsDialect, openAiDialect, deepgramDialect];
