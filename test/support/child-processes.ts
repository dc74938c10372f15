/**
 * This process's child processes, read from /proc: lets a test act when a tool (pocketsphinx, ffmpeg) has really
 * started, and check that it is gone afterwards, instead of guessing with a timer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Pids of live (not zombie) children of `parent` whose executable name starts with `name`. The kernel keeps at
 * most 15 characters of the name (pocketsphinx_continuous is `pocketsphinx_co`), so pass a prefix.
 */
export function childProcesses(name: string, parent = process.pid): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // it ended while we looked
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split at the last ')'.
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(open + 1, close);
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === parent && state !== 'Z' && comm.startsWith(name.slice(0, 15))) out.push(Number(entry));
  }
  return out;
}

/** Polls until a child named `name` runs and returns its pid; throws when none has started by the deadline. */
export async function waitForChild(name: string, deadlineMs = 60_000): Promise<number> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const [pid] = childProcesses(name);
    if (pid !== undefined) return pid;
    if (Date.now() > until) throw new Error(`no child process ${name} started within ${deadlineMs} ms`);
    await sleep(5);
  }
}
