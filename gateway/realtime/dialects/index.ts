/**
 * The real-time dialects this gateway serves: native and the vendors' (ElevenLabs, OpenAI, Deepgram).
 * gateway/main.ts registers every entry with the one session bridge.
 */
import type { RealtimeDialectAdapter } from '../dialect.js';
import { nativeDialect } from './native.js';
import { VENDOR_DIALECTS } from './vendors.js';

export const REALTIME_DIALECT_ADAPTERS: readonly RealtimeDialectAdapter[] = [nativeDialect, ...VENDOR_DIALECTS];
export { nativeDialect };
