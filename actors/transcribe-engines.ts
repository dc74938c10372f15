/** Model id → transcribe engine id for every recogniser the catalogue declares. */
import { CATALOGUE, batchEngineId } from '../engines/models/catalogue.js';

export function transcribeEnginesByModel(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of CATALOGUE) if (m.task === 'asr') out[m.id] = batchEngineId(m);
  return out;
}
