// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import { WorkspacesClient } from '../../api';
import { SecretRequestError, SecretsClient } from '../../secrets/client';
import { WireServer } from '../wireserver';

const info = {
  name: 'GH_TOKEN',
  git_host: 'github.com',
  updated_at: '2026-01-01T00:00:00.000+00:00'
};

describe('SecretsClient', () => {
  let server: WireServer;
  let client: SecretsClient;

  beforeEach(async () => {
    server = new WireServer();
    await server.start();
    client = new SecretsClient(new WorkspacesClient(server.settings()));
  });

  afterEach(async () => {
    await server.stop();
  });

  it('lists names under api/code/secrets with the token header', async () => {
    server.route = () => ({ status: 200, body: { secrets: [info] } });
    await expect(client.list()).resolves.toEqual([info]);
    const [request] = server.requests;
    expect(request.url).toBe('/base/api/code/secrets');
    expect(request.headers.authorization).toBe('token secret-token');
  });

  it('puts the value and git host under the encoded name', async () => {
    server.route = () => ({ status: 201, body: info });
    const body = { value: 'ghp_x', git_host: 'github.com' };
    await expect(client.put('GH_TOKEN', body)).resolves.toEqual(info);
    const [request] = server.requests;
    expect(request.method).toBe('PUT');
    expect(request.url).toBe('/base/api/code/secrets/GH_TOKEN');
    expect(JSON.parse(request.body)).toEqual(body);
  });

  it('deletes, answering nothing on 204', async () => {
    server.route = () => ({ status: 204 });
    await expect(client.remove('GH_TOKEN')).resolves.toBeUndefined();
    expect(server.requests[0].method).toBe('DELETE');
  });

  it('turns a 400 into an error naming the field the server blamed', async () => {
    server.route = () => ({
      status: 400,
      body: { message: 'git_host must be a host name', field: 'git_host' }
    });
    const error = await client.put('T', { value: 'x' }).catch(e => e);
    expect(error).toBeInstanceOf(SecretRequestError);
    expect(error.message).toBe('git_host must be a host name');
    expect(error.field).toBe('git_host');
    expect(error.status).toBe(400);
  });

  it('keeps a field it does not know out of the error', async () => {
    server.route = () => ({
      status: 400,
      body: { message: 'Unknown field(s): owner.', field: 'owner' }
    });
    const error = await client.put('T', { value: 'x' }).catch(e => e);
    expect(error.field).toBeNull();
  });
});
