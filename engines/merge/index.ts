/** The merge stage: the final transcript document and its txt / srt / vtt renders. */
export {
  MergeEngine, MERGE_ENGINE_ID, mergeTranscript, checkTranscribeOutput, checkPrepareOutput,
  type TranscriptDocument, type MergedSegment, type MergedWord, type MergeRequest, type MergeEngineOptions,
} from './merge-engine.js';
export {
  renderTxt, renderSrt, renderVtt, buildCues, formatTimestamp, wrapWords,
  type RenderOptions, type RenderableTranscript, type RenderableSegment, type RenderableWord, type Cue,
} from './render.js';
