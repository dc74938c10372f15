/**
 * Builds a job's task graph from its request. Today: prepare → transcribe → merge, with per-channel fan-out
 * (transcribe_ch0…N) when asked. Optional stages (vad, align, diarize, pii_detect, audio_redact) slot in by
 * adding nodes and edges here; nothing else in the actor changes.
 */
import { baseStage, type JobParams, type TaskState } from '../streams/index.js';

export interface EngineSelection {
  /** Engine id that serves a stage for a given model (undefined model: the default). */
  engineFor(stage: string, model: string | undefined): string;
}

export interface DagNode {
  readonly stage: string;
  readonly dependsOn: readonly string[];
  readonly required: boolean;
  readonly channel?: number;
}

export function planStages(params: JobParams, channels = 1): DagNode[] {
  const nodes: DagNode[] = [{ stage: 'prepare', dependsOn: [], required: true }];
  // VAD runs beside transcription (recognisers cut their own windows); merge carries its regions.
  if (params.vad) nodes.push({ stage: 'vad', dependsOn: ['prepare'], required: true });
  const transcribeStages: string[] = [];
  if (params.perChannel && channels > 1) {
    for (let ch = 0; ch < channels; ch++) {
      nodes.push({ stage: `transcribe_ch${ch}`, dependsOn: ['prepare'], required: true, channel: ch });
      transcribeStages.push(`transcribe_ch${ch}`);
    }
  } else {
    nodes.push({ stage: 'transcribe', dependsOn: ['prepare'], required: true });
    transcribeStages.push('transcribe');
  }
  nodes.push({ stage: 'merge', dependsOn: ['prepare', ...(params.vad ? ['vad'] : []), ...transcribeStages], required: true });
  return nodes;
}

/** Task ids are derived from job id and stage, so a replayed job.created builds the same graph. */
export function taskIdFor(jobId: string, stage: string): string {
  return `${jobId.replace(/^job_/, 'task_')}_${stage}`;
}

export function buildDag(jobId: string, params: JobParams, engines: EngineSelection, channels = 1): TaskState[] {
  return planStages(params, channels).map((node) => ({
    taskId: taskIdFor(jobId, node.stage),
    stage: node.stage,
    engineId: engines.engineFor(baseStage(node.stage), params.model),
    dependsOn: [...node.dependsOn],
    required: node.required,
    status: 'pending',
    attempt: 0,
    retries: 0,
    config: {
      ...(params.language && params.language !== 'auto' ? { language: params.language } : {}),
      ...(params.model && params.model !== 'auto' ? { model: params.model } : {}),
      ...(node.channel !== undefined ? { channel: node.channel } : {}),
      ...(params.timestampsGranularity ? { timestampsGranularity: params.timestampsGranularity } : {}),
      ...(node.stage === 'prepare' && params.perChannel ? { perChannel: true } : {}),
      ...(node.stage.startsWith('transcribe') && params.task === 'translate' ? { task: 'translate' as const } : {}),
    },
    attempts: [],
  }));
}

/**
 * A long file's transcription in parts: once prepare reports the duration, a pending `transcribe` task of audio
 * longer than `chunkSeconds` becomes N parts of equal nominal length (at most `chunkSeconds` each). The first part
 * keeps the `transcribe` task (its id, so every row already written about it stays true); parts 1…N-1 are
 * `transcribe_part<i>`, and merge waits for all of them. Their dispatches go out together, so every live instance of
 * the engine takes some. Per-channel jobs and files within the limit are left as they are.
 */
export function splitTranscribe(tasks: readonly TaskState[], jobId: string, durationSeconds: number, chunkSeconds: number): TaskState[] {
  if (chunkSeconds <= 0 || durationSeconds <= chunkSeconds) return [...tasks];
  const whole = tasks.find((t) => t.stage === 'transcribe');
  if (whole?.status !== 'pending' || whole.attempt !== 0 || whole.config.chunkEnd !== undefined) return [...tasks];
  const parts = Math.ceil(durationSeconds / chunkSeconds);
  const bound = (i: number): number => Math.round(((durationSeconds * i) / parts) * 1000) / 1000;
  const partStages = Array.from({ length: parts - 1 }, (_, i) => `transcribe_part${i + 1}`);
  const out: TaskState[] = [];
  for (const task of tasks) {
    if (task === whole) {
      out.push({ ...task, config: { ...task.config, chunkStart: 0, chunkEnd: bound(1) } });
      partStages.forEach((stage, i) => {
        out.push({ ...task, taskId: taskIdFor(jobId, stage), stage, config: { ...task.config, chunkStart: bound(i + 1), chunkEnd: i + 2 === parts ? durationSeconds : bound(i + 2) } });
      });
    } else if (task.dependsOn.includes('transcribe')) {
      out.push({ ...task, dependsOn: [...task.dependsOn, ...partStages] });
    } else out.push(task);
  }
  return out;
}
