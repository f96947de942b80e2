// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import { ServerConnection } from '@jupyterlab/services';
import { WorkspaceRequestError, WorkspacesClient } from '../api';
import { WireServer } from './wireserver';

const workspace = {
  id: 'w1',
  name: 'demo',
  repo: 'octo/demo',
  branch: 'main',
  starred: false,
  container_name: 'code-workspace-w1',
  created_at: '2026-01-01T00:00:00+00:00',
  updated_at: '2026-01-01T00:00:00+00:00'
};

describe('WorkspacesClient', () => {
  let server: WireServer;
  let client: WorkspacesClient;

  beforeEach(async () => {
    server = new WireServer();
    await server.start();
    client = new WorkspacesClient(server.settings());
  });

  afterEach(async () => {
    await server.stop();
  });

  it('lists under the base URL with the token header', async () => {
    server.route = () => ({ status: 200, body: { workspaces: [workspace] } });
    await expect(client.list()).resolves.toEqual([workspace]);
    const [request] = server.requests;
    expect(request.method).toBe('GET');
    expect(request.url).toBe('/base/api/code/workspaces');
    expect(request.headers.authorization).toBe('token secret-token');
  });

  it('sends the create body as JSON and returns the workspace', async () => {
    server.route = () => ({ status: 201, body: workspace });
    const spec = { name: 'demo', repo: 'octo/demo', branch: 'main' };
    await expect(client.create(spec)).resolves.toEqual(workspace);
    const [request] = server.requests;
    expect(request.method).toBe('POST');
    expect(JSON.parse(request.body)).toEqual(spec);
  });

  it('turns a 400 into an error with the message and the field', async () => {
    server.route = () => ({
      status: 400,
      body: { message: 'Repository must be owner/name or a URL', field: 'repo' }
    });
    const error = await client
      .create({ name: 'x', repo: '-evil', branch: '' })
      .catch(e => e);
    expect(error).toBeInstanceOf(WorkspaceRequestError);
    expect(error).toBeInstanceOf(ServerConnection.ResponseError);
    expect(error.message).toBe('Repository must be owner/name or a URL');
    expect(error.field).toBe('repo');
    expect(error.status).toBe(400);
  });

  it('ignores a field it does not know and a null field', async () => {
    server.route = request => ({
      status: 400,
      body: {
        message: 'Unknown field',
        field: request.body.includes('first') ? 'owner' : null
      }
    });
    const first = await client
      .create({ name: 'first', repo: '', branch: '' })
      .catch(e => e);
    const second = await client
      .create({ name: 'second', repo: '', branch: '' })
      .catch(e => e);
    expect(first.field).toBeNull();
    expect(second.field).toBeNull();
    expect(second.message).toBe('Unknown field');
  });

  it("carries the server's message for 503 and 500 from ensure", async () => {
    server.route = request =>
      request.url.endsWith('/w1/ensure')
        ? {
            status: 503,
            body: {
              message: 'The Docker engine is unreachable: start it and retry.'
            }
          }
        : {
            status: 500,
            body: { status: 'error', message: 'container failed' }
          };
    const unavailable = await client.ensure('w1').catch(e => e);
    expect(unavailable.status).toBe(503);
    expect(unavailable.message).toBe(
      'The Docker engine is unreachable: start it and retry.'
    );
    expect(unavailable.field).toBeNull();
    const broken = await client.ensure('w2').catch(e => e);
    expect(broken.status).toBe(500);
    expect(broken.message).toBe('container failed');
  });

  it('falls back on the status when the body is not JSON', async () => {
    server.route = () => ({
      status: 502,
      statusText: 'Bad Gateway',
      text: '<html>proxy error</html>'
    });
    const error = await client.get('w1').catch(e => e);
    expect(error).toBeInstanceOf(WorkspaceRequestError);
    expect(error.message).toBe('The server answered 502 Bad Gateway');
  });

  it('uses the reason when there is no message (tornado errors)', async () => {
    server.route = () => ({ status: 403, body: { reason: 'Forbidden' } });
    const error = await client.get('w1').catch(e => e);
    expect(error.message).toBe('Forbidden');
    expect(error.status).toBe(403);
  });

  it('maps each call to its method and path, escaping the id', async () => {
    server.route = request =>
      request.method === 'DELETE'
        ? { status: 204 }
        : request.url.endsWith('/ensure')
          ? { status: 200, body: { status: 'started' } }
          : { status: 200, body: workspace };
    await client.get('a b');
    await client.rename('w1', 'renamed');
    await client.toggleStar('w1');
    await expect(client.remove('w1')).resolves.toBeUndefined();
    await expect(client.ensure('w1')).resolves.toEqual({ status: 'started' });
    expect(server.requests.map(r => `${r.method} ${r.url}`)).toEqual([
      'GET /base/api/code/workspaces/a%20b',
      'PATCH /base/api/code/workspaces/w1',
      'POST /base/api/code/workspaces/w1/star',
      'DELETE /base/api/code/workspaces/w1',
      'POST /base/api/code/workspaces/w1/ensure'
    ]);
    expect(JSON.parse(server.requests[1].body)).toEqual({ name: 'renamed' });
  });

  it('raises a NetworkError when the server is gone', async () => {
    const port = server.port;
    await server.stop();
    const gone = new WorkspacesClient(
      ServerConnection.makeSettings({
        baseUrl: `http://127.0.0.1:${port}/base/`,
        wsUrl: `ws://127.0.0.1:${port}/base/`
      })
    );
    await expect(gone.list()).rejects.toBeInstanceOf(
      ServerConnection.NetworkError
    );
    server = new WireServer();
    await server.start(); // for afterEach
  });

  it('puts the token on the relay URL only when the settings say so', () => {
    const withToken = new WorkspacesClient(server.settings());
    expect(withToken.terminalUrl('w 1')).toBe(
      `ws://127.0.0.1:${server.port}/base/api/ws/code/w%201?token=secret-token`
    );
    const cookieOnly = new WorkspacesClient(
      server.settings({ appendToken: false })
    );
    expect(cookieOnly.terminalUrl('w1')).toBe(
      `ws://127.0.0.1:${server.port}/base/api/ws/code/w1`
    );
    const noToken = new WorkspacesClient(server.settings({ token: '' }));
    expect(noToken.terminalUrl('w1')).toBe(
      `ws://127.0.0.1:${server.port}/base/api/ws/code/w1`
    );
  });
});
