import { appendFileSync } from 'node:fs';

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

/**
 * The configuration of every AWS client the CLI creates: the SDK's defaults (region, credentials and
 * AWS_ENDPOINT_URL from the environment), and with STEDI_AWS_CALL_LOG=<file> a logger that records each
 * command sent, so that a test can check the CLI user's policy against the calls the CLI really makes.
 */
export function awsClientConfig(env: NodeJS.ProcessEnv = process.env): { logger?: SdkLogger } {
  const file = env[AWS_CALL_LOG_ENV];
  return file ? { logger: callRecorder(file) } : {};
}
