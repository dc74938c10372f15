/** CPU time and memory of a process from /proc, for the benchmarks' per-process figures (Linux only). */
import { readFile } from 'node:fs/promises';

export interface ProcessSample {
  readonly name: string;
  /** User + system CPU seconds since the process started. */
  readonly cpuSeconds: number;
  /** Peak resident memory (VmHWM), MiB. */
  readonly rssPeakMb: number;
}

// Linux reports utime/stime in clock ticks of USER_HZ, 100 on every architecture Node runs on.
const TICKS_PER_SECOND = 100;

/** One process's counters, or undefined once it has exited. */
export async function processSample(pid: number | undefined, name: string): Promise<ProcessSample | undefined> {
  if (pid === undefined) return undefined;
  try {
    return sampleFromProc(name, await readFile(`/proc/${pid}/stat`, 'utf8'), await readFile(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The sample in a process's /proc stat and status texts; undefined for a process that has exited. */
export function sampleFromProc(name: string, stat: string, status: string): ProcessSample | undefined {
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const hwm = /VmHWM:\s+(\d+)/.exec(status)?.[1];
  // A killed process not yet reaped (a zombie) still has a status file, without memory lines: it has exited.
  if (hwm === undefined || !Number.isFinite(ticks)) return undefined;
  return { name, cpuSeconds: ticks / TICKS_PER_SECOND, rssPeakMb: Number(hwm) / 1024 };
}

/** Samples of every named process. */
export async function sampleProcesses(processes: readonly { readonly name: string; readonly pid: number | undefined }[]): Promise<ProcessSample[]> {
  const out: ProcessSample[] = [];
  for (const p of processes) {
    const sample = await processSample(p.pid, p.name);
    if (sample) out.push(sample);
  }
  return out;
}

/** CPU share of each process over a run: CPU seconds spent between two samples per wall second (1 = one full core). */
export function cpuShares(before: readonly ProcessSample[], after: readonly ProcessSample[], wallSeconds: number): (ProcessSample & { cpuShare: number })[] {
  return after.map((a) => {
    const b = before.find((x) => x.name === a.name);
    return { ...a, cpuShare: wallSeconds > 0 ? (a.cpuSeconds - (b?.cpuSeconds ?? 0)) / wallSeconds : Number.NaN };
  });
}
