/** The merge stage's renderers, behind the gateway's TranscriptRenderers seam, with the stored document checked first. */
import { renderSrt, renderTxt, renderVtt, type RenderableTranscript } from '../../engines/merge/index.js';
import { arrayOf, num, object, optional, str, int } from '../../streams/validate.js';
import type { TranscriptRenderers } from '../transcriptions.js';

const word = object({ text: str, start: num, end: num });
const checkRenderable = object({
  text: str,
  segments: arrayOf(object({ start: num, end: num, text: str, channel: optional(int), words: optional(arrayOf(word)) })),
});

function renderable(doc: unknown): RenderableTranscript {
  return checkRenderable(doc, 'transcript');
}

export const transcriptRenderers: TranscriptRenderers = {
  txt: (doc) => renderTxt(renderable(doc)),
  srt: (doc, options) => renderSrt(renderable(doc), options),
  vtt: (doc, options) => renderVtt(renderable(doc), options),
};
