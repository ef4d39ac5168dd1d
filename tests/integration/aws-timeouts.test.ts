import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { expect } from '@jest/globals';
import { spawn } from 'node:child_process';
import { Server, Socket, createServer } from 'node:net';
import path from 'node:path';
import { AWS_READ_TIMEOUT_ENV, awsClientConfig } from '../../src/aws/clients';
import { ConfigError } from '../../src/config';
import { projectRoot } from '../../src/project';

const BIN = path.join(projectRoot(), 'bin', 'stedi.js');

/** A TCP server on 127.0.0.1 that accepts every connection and never sends a byte: a hung endpoint. */
async function silentEndpoint() {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };

// NodeHttpHandlerOptions (@smithy/types): connectionTimeout and socketTimeout default to 0, "which disables
// the timeout": without them a call to an endpoint that accepts and never answers waits for ever.
describe('the CLI’s AWS clients against an endpoint that accepts connections and never answers', () => {
  it('give up after the read timeout with an error naming the endpoint, retried as the SDK retries timeouts', async () => {
    const endpoint = await silentEndpoint();
    try {
      const sfn = new SFNClient({
        ...awsClientConfig({ [AWS_READ_TIMEOUT_ENV]: '150' }),
        endpoint: endpoint.url,
        region: 'us-east-1',
        credentials,
        maxAttempts: 2,
      });
      const error = (await sfn
        .send(new ListExecutionsCommand({ stateMachineArn: 'arn' }))
        .catch((e: unknown) => e)) as Error;
      expect(error.name).toBe('TimeoutError');
      expect(error.message).toMatch(
        new RegExp(`^no answer from the AWS endpoint ${endpoint.url}: connected, but nothing came back for 150 ms`),
      );
      expect(endpoint.connections()).toBe(2);
    } finally {
      await endpoint.close();
    }
  });

  it('make a --stage command fail (exit code 1) saying which endpoint did not answer', async () => {
    const endpoint = await silentEndpoint();
    try {
      const child = spawn(process.execPath, [BIN, 'status', '--stage', 'test'], {
        env: {
          ...process.env,
          AWS_ENDPOINT_URL: endpoint.url,
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'testing',
          AWS_SECRET_ACCESS_KEY: 'testing',
          AWS_MAX_ATTEMPTS: '1',
          [AWS_READ_TIMEOUT_ENV]: '150',
        },
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(1);
      expect(stderr).toMatch(
        new RegExp(
          `^stedi: no answer from the AWS endpoint ${endpoint.url}: connected, but nothing came back for 150 ms`,
        ),
      );
      expect(endpoint.connections()).toBe(1);
    } finally {
      await endpoint.close();
    }
  });

  it('refuses a timeout that is not a whole number of milliseconds, naming the variable', () => {
    expect(() => awsClientConfig({ [AWS_READ_TIMEOUT_ENV]: '5s' })).toThrow(ConfigError);
    expect(() => awsClientConfig({ [AWS_READ_TIMEOUT_ENV]: '5s' })).toThrow(`${AWS_READ_TIMEOUT_ENV}=5s`);
  });
});
