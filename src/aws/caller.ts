import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';

/**
 * The caller's aws:userid: STS GetCallerIdentity's UserId (no permission needed: "No permissions are required to
 * perform this operation", STS API Reference), the value IAM gives the ${aws:userid} policy variable.
 */
export async function callerUserId(client: STSClient): Promise<string> {
  const { UserId } = await client.send(new GetCallerIdentityCommand({}));
  if (!UserId) throw new Error('STS GetCallerIdentity returned no UserId');
  return UserId;
}
