/**
 * The lake's log of runs, kept in its committed catalog (versions.ts), and which snapshots it keeps.
 *
 * Every commit made for a run records the run id and the commit's generation; a run that commits several
 * times (each job's validated copies, then its tables) is recorded once, at its last commit: the lake as
 * that run left it. The snapshots of the newest `keepRuns` runs are kept, with every version they link
 * to, so `stedi query --as-of RUN` can read them; older ones are collected as usual. The log itself is
 * longer than the snapshots kept, so a run whose snapshot is gone is told apart from one never run here.
 */

/** How many runs' snapshots a lake keeps by default (each with the versions it links to). */
export const DEFAULT_KEEP_RUNS = 10;
/** How many runs the log remembers (their ids only, once their snapshots are gone). */
export const RUN_LOG_LENGTH = 200;

export interface RunRecord {
  runId: string;
  /** The generation of the run's last commit: its snapshot is `_snapshots/g<generation>/`. */
  generation: number;
  /** When that commit was made (ISO 8601). */
  committedAt: string;
}

/** What a catalog records of runs (versions.ts keeps these fields beside the versions). */
export interface RunLog {
  /** Newest first. */
  runs?: RunRecord[];
  /** Generations of the snapshots kept for the newest runs (besides the current one). */
  retainedSnapshots?: number[];
}

/** The run a commit is made for, and how many runs' snapshots to keep. */
export interface RunCommit {
  runId: string;
  keepRuns: number;
  committedAt?: string;
}

/** The log after a commit of `run` at `generation`: the run moved to the front, the newest `keepRuns` retained. */
export function logRun(log: RunLog, run: RunCommit, generation: number): Required<RunLog> {
  if (!Number.isInteger(run.keepRuns) || run.keepRuns < 1)
    throw new Error(`keepRuns must be at least 1: ${run.keepRuns}`);
  const record: RunRecord = {
    runId: run.runId,
    generation,
    committedAt: run.committedAt ?? new Date().toISOString(),
  };
  const runs = [record, ...(log.runs ?? []).filter((r) => r.runId !== run.runId)].slice(0, RUN_LOG_LENGTH);
  return { runs, retainedSnapshots: runs.slice(0, run.keepRuns).map((r) => r.generation) };
}
