/** Debian pocketsphinx as a Recognizer. */
export { PocketsphinxRecognizer, createPocketsphinxRecognizer, POCKETSPHINX_MODEL_ID, type PocketsphinxRecognizerOptions } from './pocketsphinx-recognizer.js';
export { parsePocketsphinxOutput, parseWordLines, segmentWords, type SegmentationOptions, type ParsedToken } from './pocketsphinx-output.js';
