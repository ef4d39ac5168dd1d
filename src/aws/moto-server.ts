import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A moto server on a free loopback port: the local AWS APIs (S3, Glue, SSM, CloudWatch, SQS, Step Functions...). */
export interface MotoServer {
  endpoint: string;
  /** The environment an AWS SDK client, boto3 or the CLI needs to talk to it. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface StartMotoOptions {
  /** The Python that has moto[server] installed (default: python3 on PATH). */
  python?: string;
  /** How long to wait for it to answer (default 20 s). */
  startTimeoutMs?: number;
  /** The module run with `python -m` (default moto.server); it takes moto.server's -H and -p. */
  module?: string;
  /** More environment for it (e.g. PYTHONPATH for a module of the project's). */
  env?: Record<string, string>;
}

/**
 * Starts `python -m moto.server` on a free port and waits until it answers. stop() ends it (SIGTERM) and
 * waits for it to exit; the caller calls it in `finally`.
 */
export async function startMoto(options: StartMotoOptions = {}): Promise<MotoServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const python = options.python ?? 'python3';
  // Run through a small launcher that ends the server when its stdin closes: when this process dies
  // without stopping it (SIGKILL, a second Ctrl-C), the pipe closes and the server goes too.
  const launcher =
    'import os, runpy, sys, threading\n' +
    'threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n' +
    'module = sys.argv[1]\n' +
    'sys.argv = [module] + sys.argv[2:]\n' +
    'runpy.run_module(module, run_name="__main__", alter_sys=True)\n';
  const child: ChildProcess = spawn(
    python,
    ['-c', launcher, options.module ?? 'moto.server', '-H', '127.0.0.1', '-p', String(port)],
    { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, ...options.env } },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr = (stderr + String(chunk)).slice(-4000)));
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null || spawnError) return;
    child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  for (;;) {
    if (spawnError) throw new Error(`cannot start the moto server with ${python}: ${spawnError.message}`);
    if (child.exitCode !== null)
      throw new Error(`the moto server exited (is the python package moto[server] installed?): ${stderr.slice(-500)}`);
    try {
      const response = await fetch(`${endpoint}/moto-api/`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the moto server did not answer on ${endpoint} within 20 s: ${stderr.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const env = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
  return { endpoint, env, stop };
}
