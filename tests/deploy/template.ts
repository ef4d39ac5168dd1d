import { readFileSync } from 'node:fs';
import path from 'node:path';
import { required } from '../../src/required';
import { TemplateValue } from '../helpers/iam';
import { ROOT, SERVERLESS, STAGE, offlineEnv } from './offline';

// What the deploy tests share: `serverless package`'s output (built offline, once, by package-setup.ts), the
// template's parts typed as CloudFormation documents them, and helpers that read them.
// No AWS account is used: dummy credentials, and IMDS disabled so nothing waits on it.

// The template's parts these tests read, typed as CloudFormation documents them; values compared whole
// (toEqual) stay unknown.
export interface Resource<P = unknown> {
  Type: string;
  Properties: P;
  DependsOn?: string | string[];
  Condition?: string;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}
export interface Template {
  Parameters: Record<string, { Default?: string }>;
  Conditions: Record<string, unknown>;
  Resources: Record<string, Resource>;
  Outputs: Record<string, { Value: unknown }>;
}
export type Conditions = Record<string, Record<string, unknown>>;
export interface PolicyDocument {
  Statement: RawStatement | RawStatement[];
}
export interface RawStatement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: TemplateValue | TemplateValue[];
  Condition?: Conditions;
  Principal?: '*' | { Service?: string | string[] };
}
export interface Bucket {
  BucketName: TemplateValue;
  BucketEncryption: {
    ServerSideEncryptionConfiguration: { ServerSideEncryptionByDefault: { SSEAlgorithm: string } }[];
  };
  PublicAccessBlockConfiguration: unknown;
  VersioningConfiguration: unknown;
  LifecycleConfiguration: { Rules: unknown[] };
  NotificationConfiguration: {
    QueueConfigurations: {
      Event: string;
      Queue: unknown;
      Filter: { S3Key: { Rules: { Name: string; Value: string }[] } };
    }[];
  };
}
export interface Queue {
  SqsManagedSseEnabled?: boolean;
  RedrivePolicy?: { deadLetterTargetArn: unknown; maxReceiveCount: number };
  VisibilityTimeout?: number;
  MessageRetentionPeriod?: number;
}
export interface LambdaFunction {
  Timeout: number;
  ReservedConcurrentExecutions?: number;
  Environment: { Variables: Record<string, unknown> };
  Code: { S3Key: string };
}
export interface Alarm {
  Namespace?: string;
  MetricName?: string;
  Dimensions?: unknown;
  AlarmActions: unknown;
  AlarmDescription?: string;
  AlarmName: TemplateValue;
  Metrics?: {
    MetricStat?: { Metric: { Namespace: string; MetricName?: string; Dimensions: unknown } };
    ReturnData?: boolean;
    Expression?: string;
  }[];
}
export interface GlueJob {
  Name: unknown;
  Timeout: number;
  Command: { ScriptLocation: TemplateValue };
  DefaultArguments: Record<string, unknown>;
}
export interface GlueTable {
  DatabaseName: unknown;
  OpenTableFormatInput?: unknown;
  TableInput: {
    Name: string;
    StorageDescriptor: {
      Columns: { Name: string; Type?: string }[];
      Location: unknown;
      SerdeInfo: { SerializationLibrary: string };
    };
  };
}
export interface StateMachine {
  DefinitionString: string;
  DefinitionSubstitutions: Record<string, unknown>;
  LoggingConfiguration: { Destinations: unknown; Level: string };
  TracingConfiguration: unknown;
  RoleArn: unknown;
}
export interface EventRule {
  State: string;
  EventPattern: unknown;
  Targets: unknown[];
}
/** The dashboard body: widgets whose metrics are [namespace, name, dimension, value, ..., options?]. */
export interface DashboardBody {
  widgets: { type: string; properties: { metrics?: unknown[][]; alarms?: unknown } }[];
}
export interface EventSourceMapping {
  MaximumBatchingWindowInSeconds?: number;
  ScalingConfig?: unknown;
}

/** The text of a { "Fn::Sub": text } value (the only form the template uses), else undefined. */
export const subOf = (value: unknown): string | undefined =>
  typeof value === 'object' && value !== null && 'Fn::Sub' in value && typeof value['Fn::Sub'] === 'string'
    ? value['Fn::Sub']
    : undefined;

export { ROOT, SERVERLESS, STAGE };
/** The framework's environment, its temporary directory the one the global setup made (package-setup.ts). */
export const OFFLINE_ENV = offlineEnv(
  required(
    process.env.STEDI_SLS_SCRATCH,
    'STEDI_SLS_SCRATCH: run the deploy tests with jest (global setup: package-setup.ts)',
  ),
);

/** Actions that have no resource-level permissions, so Resource "*" is the only form IAM accepts. */
export const STAR_RESOURCE_ACTIONS = new Set([
  'cloudwatch:PutMetricData',
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
  'lakeformation:GetDataAccess',
]);

export const LANDING_PREFIXES = ['customer/landing/', 'accelerometer/landing/', 'step_trainer/landing/'];
export const ref = (id: string) => ({ Ref: id });
export const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
export const list = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];
export const pascal = (name: string) =>
  name
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');

/** `serverless package`'s output, built once for all the deploy tests by the global setup (package-setup.ts). */
export const outDir = required(
  process.env.STEDI_SLS_PACKAGE_DIR,
  'STEDI_SLS_PACKAGE_DIR: run the deploy tests with jest (global setup: package-setup.ts)',
);
export const templateFile = path.join(outDir, 'cloudformation-template-update-stack.json');
export const template = JSON.parse(readFileSync(templateFile, 'utf8')) as Template;

/** The resource with this logical id, its properties read as `P`. */
export const resource = <P = unknown>(id: string): Resource<P> => {
  const found = template.Resources[id];
  if (!found) throw new Error(`the template has no resource ${id}`);
  return found as Resource<P>;
};
export const ofType = <P = unknown>(type: string): [string, Resource<P>][] =>
  Object.entries(template.Resources).filter(([, r]) => r.Type === type) as [string, Resource<P>][];

export interface PolicyStatement {
  owner: string;
  Effect: 'Allow' | 'Deny';
  Action: string[];
  Resource: TemplateValue[];
  Condition?: Conditions;
  Principal?: RawStatement['Principal'];
}

/** Every statement of every IAM role, managed policy and resource policy in the template. */
export function policyStatements(): PolicyStatement[] {
  const out: PolicyStatement[] = [];
  const add = (owner: string, document: PolicyDocument | undefined) => {
    for (const s of list(document?.Statement))
      out.push({ ...s, owner, Action: list(s.Action), Resource: list(s.Resource) });
  };
  for (const [id, r] of Object.entries(template.Resources)) {
    const properties = r.Properties as {
      Policies?: { PolicyDocument: PolicyDocument }[];
      PolicyDocument?: PolicyDocument;
    };
    if (r.Type === 'AWS::IAM::Role') for (const p of list(properties.Policies)) add(id, p.PolicyDocument);
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') add(id, properties.PolicyDocument);
    if (['AWS::S3::BucketPolicy', 'AWS::SQS::QueuePolicy', 'AWS::SNS::TopicPolicy'].includes(r.Type))
      add(id, properties.PolicyDocument);
  }
  return out;
}

/** The dashboard's body, the JSON text of its Fn::Sub. */
export const dashboardBody = () =>
  JSON.parse(
    String(subOf(resource<{ DashboardBody: unknown }>('PipelineDashboard').Properties.DashboardBody)),
  ) as DashboardBody;

export const statementsOf = (owner: string) =>
  policyStatements().filter((s) => s.owner === owner && s.Effect === 'Allow');
