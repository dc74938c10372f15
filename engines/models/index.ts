/** Public face of the model catalogue: declarations, set-up, and the start-up check engines run. */
export { CATALOGUE, findModel, batchEngineId, MOONSHINE_TINY, SILERO_VAD_V5, WHISPER_TINY_EN, WHISPER_BASE, POCKETSPHINX_EN_US } from './catalogue.js';
export type { ModelSpec, ModelFile, ModelSource, ModelCapabilities, ModelBackend, ModelTask, WordTimestamps, ModelConversion } from './catalogue.js';
export { installModels, installedModelIds, type ModelInstallReport, type SourceAttempt, type InstallOptions } from './install.js';
export { verifyModel, verifySpec, modelDir, modelPath, modelsRoot, CONVERSION_MANIFEST, type VerifiedModel, type ConversionManifest } from './verify.js';
export { ModelError, type ModelErrorDetails } from './model-error.js';
