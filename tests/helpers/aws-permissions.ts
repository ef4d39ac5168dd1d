import type { RecordedAwsCall } from '../../src/aws/clients';
import type { Request } from './iam';

/**
 * The IAM authorisations an AWS API call needs, as the Service Authorization Reference ("Actions, resources,
 * and condition keys for <service>") and the operations' API references state them, for the commands the
 * stedi CLI sends (recorded by src/aws/clients.ts). A command not listed here throws: whoever makes the CLI
 * send a new one says what it needs.
 */
export interface Authorisation extends Request {
  /** The call it is for, and why, for the failure message. */
  why: string;
}

export interface CallContext {
  partition: string;
  region: string;
  account: string;
  /** The workgroup every query of the CLI runs in: GetQueryExecution and GetQueryResults name only the query. */
  workGroup: string;
  /** Where this caller's query results go: s3://<bucket>/<prefix>, the OutputLocation the CLI gives. */
  resultsLocation: string;
  /** The caller's aws:userid, in every request's context (IAM's ${aws:userid} policy variable). */
  userId: string;
}

/** A recorded input value as text (they are strings; anything else shows as JSON, never as [object Object]). */
const text = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));
const s3Object = (bucket: unknown, key: unknown) => `arn:aws:s3:::${text(bucket)}/${text(key)}`;
const s3Bucket = (bucket: unknown) => `arn:aws:s3:::${text(bucket)}`;

export function authorisationsFor(call: RecordedAwsCall, ctx: CallContext): Authorisation[] {
  const input = call.input;
  const need = (action: string, resource: string, why: string, context: Record<string, string> = {}) => ({
    action,
    resource,
    context: { 'aws:userid': ctx.userId, ...context },
    why: `${call.client} ${call.command}: ${why}`,
  });
  const [resultsBucket, ...resultsPrefix] = ctx.resultsLocation.replace(/^s3:\/\//, '').split('/');
  const arn = (service: string, resource: string) =>
    `arn:${ctx.partition}:${service}:${ctx.region}:${ctx.account}:${resource}`;
  switch (`${call.client} ${call.command}`) {
    case 'CloudFormationClient DescribeStacksCommand':
      // Resource type stack: arn:…:stack/<name>/<id>; the id is the stack's, unknown to the caller.
      return [
        need(
          'cloudformation:DescribeStacks',
          arn('cloudformation', `stack/${text(input.StackName)}/00000000-0000-0000-0000-000000000000`),
          'stack',
        ),
      ];
    case 'SFNClient StartExecutionCommand':
      return [need('states:StartExecution', text(input.stateMachineArn), 'stateMachine')];
    case 'SFNClient ListExecutionsCommand':
      return [need('states:ListExecutions', text(input.stateMachineArn), 'stateMachine')];
    case 'SFNClient DescribeExecutionCommand':
      return [need('states:DescribeExecution', text(input.executionArn), 'execution')];
    case 'SFNClient GetExecutionHistoryCommand':
      return [need('states:GetExecutionHistory', text(input.executionArn), 'execution')];
    case 'S3Client PutObjectCommand': {
      const out = [need('s3:PutObject', s3Object(input.Bucket, input.Key), 'object')];
      if (input.Tagging) out.push(need('s3:PutObjectTagging', s3Object(input.Bucket, input.Key), 'with Tagging'));
      if (input.ACL) out.push(need('s3:PutObjectAcl', s3Object(input.Bucket, input.Key), 'with an ACL'));
      return out;
    }
    case 'S3Client GetObjectCommand':
    case 'S3Client HeadObjectCommand': {
      // GetObject: "If you include a versionId in your request header, you must have the s3:GetObjectVersion
      // permission ... The s3:GetObject permission is not required in this scenario"; HEAD needs "the relevant
      // read object (or version) permission" (Amazon S3 API Reference, GetObject and HeadObject).
      const action = input.VersionId ? 's3:GetObjectVersion' : 's3:GetObject';
      const out = [need(action, s3Object(input.Bucket, input.Key), input.VersionId ? 'object, VersionId' : 'object')];
      // "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403": the CLI
      // reads a missing key's NoSuchKey (404) as "none", which it gets only with s3:ListBucket.
      if (call.error === 'NoSuchKey' || call.error === 'NotFound')
        out.push(need('s3:ListBucket', s3Bucket(input.Bucket), `a missing key answered ${call.error}`));
      return out;
    }
    case 'S3Client ListObjectsV2Command':
      return [
        need(
          's3:ListBucket',
          s3Bucket(input.Bucket),
          'bucket',
          input.Prefix ? { 's3:prefix': text(input.Prefix) } : {},
        ),
      ];
    case 'STSClient GetCallerIdentityCommand':
      // "No permissions are required to perform this operation" (STS API Reference, GetCallerIdentity).
      return [];
    case 'AthenaClient StartQueryExecutionCommand': {
      // Athena writes the results to the query's OutputLocation as the caller (Athena guide, "Specify a query
      // result location": the caller needs s3:PutObject there); the CLI gives its own, checked by the test.
      const location = text((input.ResultConfiguration as { OutputLocation?: string } | undefined)?.OutputLocation);
      const [bucket, ...prefix] = location.replace(/^s3:\/\//, '').split('/');
      return [
        need(
          'athena:StartQueryExecution',
          arn('athena', `workgroup/${text(input.WorkGroup ?? 'primary')}`),
          'workgroup',
        ),
        need(
          's3:PutObject',
          s3Object(bucket, `${prefix.join('/')}query-id.csv`),
          'the results Athena writes as the caller',
        ),
      ];
    }
    case 'AthenaClient GetQueryExecutionCommand':
      return [need('athena:GetQueryExecution', arn('athena', `workgroup/${ctx.workGroup}`), 'workgroup of the query')];
    case 'AthenaClient GetQueryResultsCommand': {
      // GetQueryResults (Athena API Reference): "the IAM principal with permission to call GetQueryResults also
      // must have permissions to the Amazon S3 GetObject action for the Athena query results location."
      return [
        need('athena:GetQueryResults', arn('athena', `workgroup/${ctx.workGroup}`), 'workgroup of the query'),
        need(
          's3:GetObject',
          s3Object(resultsBucket, `${resultsPrefix.join('/')}${text(input.QueryExecutionId)}.csv`),
          'the query results Athena reads as the caller',
        ),
      ];
    }
    case 'GlueClient GetTablesCommand': {
      // GetTables: resource types catalog*, database*, table* (every table of the database).
      const database = text(input.DatabaseName);
      return [
        need('glue:GetTables', arn('glue', 'catalog'), 'catalog'),
        need('glue:GetTables', arn('glue', `database/${database}`), 'database'),
        need('glue:GetTables', arn('glue', `table/${database}/*`), 'its tables'),
      ];
    }
    default:
      throw new Error(
        `${call.client} ${call.command} is not mapped to its IAM actions: add it to tests/helpers/aws-permissions.ts`,
      );
  }
}
