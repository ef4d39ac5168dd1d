import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { requireOutputs, stackName } from '../../aws/stack';
import { awsClientConfig } from '../../aws/clients';
import { DATASETS, Dataset, landingPrefix } from '../../definition/layout';
import { jsonFilesIn } from '../../lake/lake';
import { required } from '../../required';
import { followExecution } from './aws-commands';
import { checkDropFile } from '../common/drop-file';
import { seconds } from '../common/format';

const out = (line: string) => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);
const POLL_MS = Number(process.env.STEDI_POLL_MS ?? 2000);
// --- stedi drop / run --landing / generate --stage: files into the bucket, then the runs they start ---------

/** A file and the dataset whose landing prefix it goes to. */
export interface LandingUpload {
  file: string;
  dataset: Dataset;
}

/**
 * Uploads each file to its dataset's landing prefix under its own name, as `aws s3 cp` would; the bucket's
 * notifications start the pipeline. Returns the keys and S3's own time of the first upload.
 */
async function uploadToLanding(s3: S3Client, bucket: string, uploads: LandingUpload[]) {
  const keys: string[] = [];
  let uploadedAt: number | undefined;
  for (const { file, dataset } of uploads) {
    const key = `${landingPrefix(dataset)}${path.basename(file)}`;
    const put = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(file), ContentType: 'application/json' }),
    );
    out(`uploaded ${file} to s3://${bucket}/${key}${put.VersionId ? ` (version ${put.VersionId})` : ''}`);
    if (uploadedAt === undefined) {
      // S3's clock, not ours: an execution that started before the upload cannot hold this version. The HEAD
      // reads the key's current version (should the key be uploaded again meanwhile, the later one, which an
      // execution then picks up): a HEAD of a VersionId would need s3:GetObjectVersion, which the CLI user's
      // policy does not grant, so that old versions of landing files stay out of its reach.
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      uploadedAt = Math.floor((head.LastModified ?? new Date()).getTime() / 1000) * 1000;
    }
    keys.push(key);
  }
  return { keys, uploadedAt: uploadedAt ?? Date.now() };
}

/**
 * Waits for the executions that pick up `keys` (the landing queue gathers drops for up to a minute, and a
 * running execution delays a batch) and follows each to its end: 0 when every one succeeded.
 */
async function followPickups(
  stage: string,
  stateMachineArn: string,
  keys: string[],
  uploadedAt: number,
  timeoutSeconds: number,
): Promise<number> {
  const waiting = new Set(keys);
  note(
    `waiting for the execution${keys.length > 1 ? 's' : ''} that pick${keys.length > 1 ? '' : 's'} up ${keys.length > 1 ? `${keys.length} files` : keys[0]} (the landing queue gathers drops for up to a minute; a running execution delays it)`,
  );
  const sfn = new SFNClient(awsClientConfig());
  const checked = new Set<string>();
  const deadline = Date.now() + timeoutSeconds * 1000;
  let code = 0;
  while (waiting.size > 0) {
    const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 50 }));
    // Oldest first: the executions run one after another, under the pipeline lock.
    for (const e of [...executions].reverse()) {
      if (!e.executionArn || checked.has(e.executionArn) || !e.startDate || e.startDate.getTime() < uploadedAt)
        continue;
      checked.add(e.executionArn);
      const described = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
      const files = (JSON.parse(described.input ?? '{}') as { files?: unknown }).files;
      const picked = Array.isArray(files)
        ? files.filter((f): f is string => typeof f === 'string' && waiting.has(f))
        : [];
      if (picked.length === 0) continue;
      for (const key of picked) waiting.delete(key);
      out(`execution ${e.name} picked ${picked.length === 1 ? 'it' : `${picked.length} files`} up`);
      code = Math.max(code, await followExecution(sfn, e.executionArn, e.name ?? e.executionArn));
    }
    if (waiting.size === 0) break;
    if (Date.now() > deadline) {
      note(
        `stedi: no execution of ${stackName(stage)} picked up ${[...waiting].join(', ')} within ${timeoutSeconds} s; see \`stedi status --stage ${stage}\``,
      );
      return 1;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return code;
}

/** Uploads the files to the stack's landing prefixes and, with `wait`, follows the runs they start. */
export async function uploadOnStage(
  uploads: LandingUpload[],
  options: { stage: string; wait?: boolean; waitTimeoutSeconds: number },
): Promise<number> {
  // Both outputs are checked before anything is uploaded; StateMachineArn only when the runs are followed.
  const outputs: Partial<Record<'DataBucketName' | 'StateMachineArn', string>> = await requireOutputs(
    new CloudFormationClient(awsClientConfig()),
    options.stage,
    options.wait ? ['DataBucketName', 'StateMachineArn'] : ['DataBucketName'],
  );
  const bucket = required(outputs.DataBucketName, 'the DataBucketName output');
  const { keys, uploadedAt } = await uploadToLanding(new S3Client(awsClientConfig()), bucket, uploads);
  if (!options.wait || keys.length === 0) return 0;
  const stateMachineArn = required(outputs.StateMachineArn, 'the StateMachineArn output');
  return followPickups(options.stage, stateMachineArn, keys, uploadedAt, options.waitTimeoutSeconds);
}

/**
 * `stedi drop --stage`: uploads the file to the dataset's landing prefix, as `aws s3 cp` would; the
 * bucket's notification starts the pipeline. With `wait`, follows the execution that picks the file up.
 */
export async function dropOnStage(
  file: string,
  options: { dataset: Dataset; stage: string; wait?: boolean; waitTimeoutSeconds: number },
): Promise<number> {
  checkDropFile(file);
  return uploadOnStage([{ file, dataset: options.dataset }], options);
}

/**
 * The DIR/<dataset>/*.json files of a folder laid out as `stedi generate --out` writes it (a symbolic link
 * to a file uploads the file, as `stedi run --landing` drops it); an entry that is not read is named.
 */
export function landingUploadsIn(dir: string): LandingUpload[] {
  return DATASETS.flatMap((dataset) => {
    const { files, skipped } = jsonFilesIn(path.join(dir, dataset));
    for (const { file, reason } of skipped) note(`warning: --landing ${file} not uploaded: ${reason}`);
    return files.map((file) => ({ file, dataset }));
  });
}

// --- stedi watch --stage --------------------------------------------------------------------------------

/**
 * `stedi watch --stage`: on AWS the bucket's notifications start the runs, so watching means following
 * them: each execution of the deployed pipeline as it starts and as it ends, until `signal` aborts.
 */
export async function watchStage(options: { stage: string; signal: AbortSignal }): Promise<number> {
  const stateMachineArn = (
    await requireOutputs(new CloudFormationClient(awsClientConfig()), options.stage, ['StateMachineArn'])
  ).StateMachineArn;
  const sfn = new SFNClient(awsClientConfig());
  const seen = new Map<string, string>();
  let first = true;
  while (!options.signal.aborted) {
    const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 20 }));
    // Said once the first listing is in: any execution that starts after this line is reported as started.
    if (first) out(`watching the executions of ${stackName(options.stage)} (Ctrl-C to stop)`);
    for (const e of [...executions].reverse()) {
      if (!e.executionArn || !e.status) continue;
      const before = seen.get(e.executionArn);
      seen.set(e.executionArn, e.status);
      if (before === e.status || (first && e.status !== 'RUNNING')) continue;
      if (before === undefined) {
        const described = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
        const input = JSON.parse(described.input ?? '{}') as { from?: string; files?: unknown[] };
        const files = Array.isArray(input.files) ? input.files.length : 0;
        out(`execution ${e.name} ${first ? 'is running' : 'started'}: from ${input.from ?? 'all'}, ${files} file(s)`);
      }
      if (e.status !== 'RUNNING') {
        const { error, cause } =
          e.status === 'SUCCEEDED'
            ? {}
            : await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
        const took = e.stopDate && e.startDate ? ` in ${seconds(e.stopDate.getTime() - e.startDate.getTime())}` : '';
        out(`execution ${e.name} ${e.status}${took}${error ? `: ${error}: ${cause ?? ''}` : ''}`);
      }
    }
    first = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, POLL_MS);
      options.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return 0;
}
