import { NodeHttpHandler } from '@smithy/node-http-handler';
import { appendFileSync } from 'node:fs';
import { ConfigError } from '../config';

/** The environment variable naming the file the CLI's AWS calls are recorded in, one JSON line per command. */
export const AWS_CALL_LOG_ENV = 'STEDI_AWS_CALL_LOG';

/** One command an AWS SDK client sent, as recorded in the call log. */
export interface RecordedAwsCall {
  /** The client's name, e.g. S3Client. */
  client: string;
  /** The command's name, e.g. HeadObjectCommand. */
  command: string;
  /** Its input as the SDK logs it (binary bodies as their length). */
  input: Record<string, unknown>;
  /** The error's name when the call failed, e.g. NoSuchKey. */
  error?: string;
}

/** The part of the SDK's Logger interface (@smithy/types) a client calls. */
interface SdkLogger {
  trace?: (...content: unknown[]) => void;
  debug: (...content: unknown[]) => void;
  info: (...content: unknown[]) => void;
  warn: (...content: unknown[]) => void;
  error: (...content: unknown[]) => void;
}

/** A JSON replacer that writes binary values as their length: a file's body, not its bytes. */
function binaryAsLength(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: value.byteLength };
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer')
    return { bytes: ((value as { data?: unknown[] }).data ?? []).length };
  return value;
}

/**
 * A logger for the SDK's logger middleware, which calls `info` with { clientName, commandName, input, output }
 * after each command and `error` with { clientName, commandName, input, error } when one fails: each becomes
 * one line of `file`. Other messages (strings from credential providers and the like) are left out.
 */
function callRecorder(file: string): SdkLogger {
  const record = (entry: unknown, failed: boolean) => {
    const e = entry as { clientName?: string; commandName?: string; input?: unknown; error?: { name?: string } };
    if (!e || typeof e !== 'object' || !e.clientName || !e.commandName) return;
    const call: RecordedAwsCall = {
      client: e.clientName,
      command: e.commandName,
      input: (e.input ?? {}) as Record<string, unknown>,
      ...(failed ? { error: e.error?.name ?? 'Error' } : {}),
    };
    appendFileSync(file, `${JSON.stringify(call, binaryAsLength)}\n`);
  };
  const ignore = () => undefined;
  return { trace: ignore, debug: ignore, warn: ignore, info: (e) => record(e, false), error: (e) => record(e, true) };
}

/** Environment variables overriding how long the CLI waits on an AWS endpoint, in milliseconds. */
export const AWS_CONNECT_TIMEOUT_ENV = 'STEDI_AWS_CONNECT_TIMEOUT_MS';
export const AWS_READ_TIMEOUT_ENV = 'STEDI_AWS_READ_TIMEOUT_MS';

/**
 * How long a request may wait for its connection, and how long a connected request may go without a
 * byte from the endpoint. The SDK waits for ever by default (NodeHttpHandlerOptions: "Defaults to 0,
 * which disables the timeout"); these are the AWS CLI's defaults for --cli-connect-timeout and
 * --cli-read-timeout (60 s each), the connect one shorter since a connection takes milliseconds when
 * the endpoint is there at all.
 */
export const DEFAULT_TIMEOUTS = { connectMs: 10_000, readMs: 60_000 };

/** A timeout of an AWS call, naming the endpoint that did not answer (the SDK's own message does not). */
export class AwsEndpointTimeoutError extends Error {
  constructor(
    readonly endpoint: string,
    detail: string,
    options: ErrorOptions,
  ) {
    super(
      `no answer from the AWS endpoint ${endpoint}: ${detail} (AWS_ENDPOINT_URL, AWS_REGION; ` +
        `${AWS_CONNECT_TIMEOUT_ENV} and ${AWS_READ_TIMEOUT_ENV} set how long to wait)`,
      options,
    );
    // The SDK's name for it, so that its retry strategy still counts it a transient error and retries.
    this.name = 'TimeoutError';
  }
}

/** The SDK's HTTP handler with both timeouts set; a timeout's error names the endpoint. */
class TimedHttpHandler extends NodeHttpHandler {
  constructor(private readonly timeouts: { connectMs: number; readMs: number }) {
    super({ connectionTimeout: timeouts.connectMs, socketTimeout: timeouts.readMs });
  }

  override async handle(...[request, options]: Parameters<NodeHttpHandler['handle']>) {
    try {
      return await super.handle(request, options);
    } catch (error) {
      if ((error as Error).name !== 'TimeoutError') throw error;
      const port = request.port ? `:${request.port}` : '';
      const endpoint = `${request.protocol}//${request.hostname}${port}`;
      const message = (error as Error).message;
      const detail = /establish a connection/.test(message)
        ? `no connection within ${this.timeouts.connectMs} ms`
        : `connected, but nothing came back for ${this.timeouts.readMs} ms`;
      throw new AwsEndpointTimeoutError(endpoint, detail, { cause: error });
    }
  }
}

function timeoutOf(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 1)
    throw new ConfigError(`${name}=${value}: expected a whole number of milliseconds >= 1`);
  return ms;
}

/**
 * The configuration of every AWS client the CLI creates: the SDK's defaults (region, credentials and
 * AWS_ENDPOINT_URL from the environment) with connect and read timeouts (DEFAULT_TIMEOUTS, or
 * STEDI_AWS_CONNECT_TIMEOUT_MS / STEDI_AWS_READ_TIMEOUT_MS), so an endpoint that never answers fails
 * the command, naming it; and with STEDI_AWS_CALL_LOG=<file> a logger that records each command sent,
 * so that a test can check the CLI user's policy against the calls the CLI really makes.
 */
export function awsClientConfig(env: NodeJS.ProcessEnv = process.env): {
  logger?: SdkLogger;
  requestHandler: NodeHttpHandler;
} {
  const requestHandler = new TimedHttpHandler({
    connectMs: timeoutOf(env, AWS_CONNECT_TIMEOUT_ENV, DEFAULT_TIMEOUTS.connectMs),
    readMs: timeoutOf(env, AWS_READ_TIMEOUT_ENV, DEFAULT_TIMEOUTS.readMs),
  });
  const file = env[AWS_CALL_LOG_ENV];
  return file ? { logger: callRecorder(file), requestHandler } : { requestHandler };
}
