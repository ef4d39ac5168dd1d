import { describe, expect, test } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GlueJobRunError, GlueWorker, GlueWorkerExitedError } from '../../src/glue-engine/worker';
import { removeDir, tempDir } from '../helpers/lake';

/**
 * The client side of the Glue stand-in's worker protocol (tools/glue-local/README.md): JSON lines
 * {"id", "argv"} in, {"id", "ok", "error"?} out, logs on stderr. A small Python program that speaks it
 * stands in for the Spark worker here; tests/glue/ run the real one.
 */
const SPEAKER = `
import json, sys
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    argv = request["argv"]
    print("log line for " + " ".join(argv), file=sys.stderr, flush=True)
    if argv[0] == "--exit":
        sys.exit(3)
    if argv[0] == "--fail":
        answer = {"id": request["id"], "ok": False, "error": {"name": "JobConfigurationError", "message": argv[1]}}
    else:
        print("not json: a stray print", flush=True)
        answer = {"id": request["id"], "ok": True}
    print(json.dumps(answer), flush=True)
`;

describe('GlueWorker, the client of the worker protocol', () => {
  test('answers each run; a failed run rejects with its error name and message; stderr goes to the log', async () => {
    const dir = tempDir('glue-worker');
    const script = path.join(dir, 'speaker.py');
    writeFileSync(script, SPEAKER);
    const logFile = path.join(dir, 'spark.log');
    const worker = GlueWorker.start({ python: 'python3', env: {}, logFile, args: [script] });
    try {
      await expect(worker.run(['--JOB_NAME', 'a'])).resolves.toBeUndefined();
      const failed = worker.run(['--fail', 'the SQL reads its own target']);
      await expect(failed).rejects.toBeInstanceOf(GlueJobRunError);
      await expect(failed).rejects.toThrow('JobConfigurationError: the SQL reads its own target');
      await expect(worker.run(['--JOB_NAME', 'b'])).resolves.toBeUndefined();
      // The worker dies mid-run: the run fails saying so, and so does every later one.
      await expect(worker.run(['--exit'])).rejects.toBeInstanceOf(GlueWorkerExitedError);
      await expect(worker.run(['--JOB_NAME', 'c'])).rejects.toThrow(/exited \(code 3\)/);
    } finally {
      await worker.stop();
      const log = readFileSync(logFile, 'utf8');
      removeDir(dir);
      expect(log).toContain('log line for --JOB_NAME a');
      expect(log).toContain('[stdout, not an answer] not json: a stray print');
    }
  });

  test('stop() closes its stdin and waits for it to exit', async () => {
    const dir = tempDir('glue-worker');
    const script = path.join(dir, 'speaker.py');
    writeFileSync(script, SPEAKER);
    const worker = GlueWorker.start({ python: 'python3', env: {}, logFile: path.join(dir, 'log'), args: [script] });
    try {
      await worker.run(['--JOB_NAME', 'a']);
      await worker.stop();
      await expect(worker.run(['--JOB_NAME', 'b'])).rejects.toThrow(/exited \(code 0\)/);
    } finally {
      removeDir(dir);
    }
  });
});
