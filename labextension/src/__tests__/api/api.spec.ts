// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import { PageConfig } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import WebSocket from 'ws';
import {
  clientFromPageConfig,
  SERVICE_URL_OPTION,
  serviceSettings,
  WorkspaceRequestError,
  WorkspacesClient
} from '../../api';
import { WireServer } from '../wireserver';

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
    expect(error.limit).toBeNull();
  });

  it('names the limit that stopped a request, with its message', async () => {
    const message =
      "The Docker host's disk is full: no workspace container can be made.";
    server.route = () => ({
      status: 507,
      body: { message, reason: 'host_disk_full' }
    });
    const full = await client
      .create({ name: 'x', repo: '', branch: '' })
      .catch(e => e);
    expect([full.status, full.limit, full.message]).toEqual([
      507,
      'host_disk_full',
      message
    ]);
    server.route = () => ({
      status: 403,
      body: { message: 'You already have 5 workspaces.', reason: 'owner_quota' }
    });
    const quota = await client
      .create({ name: 'x', repo: '', branch: '' })
      .catch(e => e);
    expect([quota.status, quota.limit]).toEqual([403, 'owner_quota']);
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
    server.route = () => ({ status: 200, body: { status: 'stopped' } });
    await expect(client.stop('w1')).resolves.toEqual({ status: 'stopped' });
    expect(server.requests.map(r => `${r.method} ${r.url}`)).toEqual([
      'GET /base/api/code/workspaces/a%20b',
      'PATCH /base/api/code/workspaces/w1',
      'POST /base/api/code/workspaces/w1/star',
      'DELETE /base/api/code/workspaces/w1',
      'POST /base/api/code/workspaces/w1/ensure',
      'POST /base/api/code/workspaces/w1/stop'
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

describe('client mode (a code-workspaces service, e.g. under JupyterHub)', () => {
  let server: WireServer;

  /**
   * Run `calls` on a page whose own server left its XSRF cookie, as a Jupyter
   * page has (only `document.cookie`: the node test runtime has no DOM).
   */
  async function withPageCookie(calls: () => Promise<void>): Promise<void> {
    const before = (globalThis as any).document;
    (globalThis as any).document = { cookie: '_xsrf=page-xsrf; other=1' };
    try {
      await calls();
    } finally {
      (globalThis as any).document = before;
    }
  }

  beforeEach(async () => {
    server = new WireServer();
    await server.start();
  });

  afterEach(async () => {
    PageConfig.setOption(SERVICE_URL_OPTION, '');
    await server.stop();
  });

  const service = (path = '/services/code-workspaces/') =>
    new WorkspacesClient(
      serviceSettings(path, `http://127.0.0.1:${server.port}`, 'hub-token', {
        WebSocket: WebSocket as unknown as typeof globalThis.WebSocket
      }),
      'service'
    );

  it('builds REST and WebSocket bases from an absolute path', () => {
    const settings = serviceSettings(
      '/services/code-workspaces',
      'https://hub.example:8443',
      't'
    );
    expect(settings.baseUrl).toBe(
      'https://hub.example:8443/services/code-workspaces/'
    );
    expect(settings.wsUrl).toBe(
      'wss://hub.example:8443/services/code-workspaces/'
    );
    expect(settings.appendToken).toBe(true);
    expect(settings.init.credentials).toBe('omit');
    const plain = serviceSettings('/svc/', 'http://127.0.0.1:8000', 't');
    expect(plain.wsUrl).toBe('ws://127.0.0.1:8000/svc/');
  });

  it('refuses a service URL that is not an absolute path on the page', () => {
    for (const bad of [
      'services/code',
      '//elsewhere.example/svc/',
      'https://elsewhere.example/svc/',
      ''
    ]) {
      expect(() => serviceSettings(bad, 'http://127.0.0.1', 't')).toThrow(
        SERVICE_URL_OPTION
      );
    }
  });

  it("calls the service with the page's token and without the XSRF header", async () => {
    const client = service();
    const page = new WorkspacesClient(server.settings());
    await withPageCookie(async () => {
      server.route = () => ({ status: 200, body: { workspaces: [workspace] } });
      await expect(client.list()).resolves.toEqual([workspace]);
      server.route = () => ({ status: 200, body: { status: 'stopped' } });
      await client.stop('w 1');
      // Single-user mode is unchanged: the page server gets its XSRF header.
      server.route = () => ({ status: 200, body: { workspaces: [] } });
      await page.list();
    });
    const [list, stop] = server.requests;
    expect(list.url).toBe('/services/code-workspaces/api/code/workspaces');
    expect(stop.url).toBe(
      '/services/code-workspaces/api/code/workspaces/w%201/stop'
    );
    for (const request of [list, stop]) {
      expect(request.headers.authorization).toBe('token hub-token');
      expect(request.headers['x-xsrftoken']).toBeUndefined();
      expect(request.headers.cookie).toBeUndefined();
    }
    expect(stop.method).toBe('POST');
    expect(stop.headers['content-type']).toBe('application/json');
    expect(list.query).toMatch(/^\d+$/); // the cache buster
    expect(server.requests[2].headers['x-xsrftoken']).toBe('page-xsrf');
  });

  it("carries the service's error message and reports an unreachable service", async () => {
    server.route = () => ({
      status: 403,
      body: { message: 'You already have 5 running workspaces.' }
    });
    const error = await service()
      .ensure('w1')
      .catch(e => e);
    expect(error).toBeInstanceOf(WorkspaceRequestError);
    expect(error.status).toBe(403);
    expect(error.message).toBe('You already have 5 running workspaces.');
    const gone = new WorkspacesClient(
      serviceSettings('/svc/', 'http://127.0.0.1:9', 't'),
      'service'
    );
    await expect(gone.list()).rejects.toBeInstanceOf(
      ServerConnection.NetworkError
    );
  });

  it('puts the token in the terminal URL, which a browser cannot give headers', async () => {
    const client = service();
    const url = client.terminalUrl('w1');
    expect(url).toBe(
      `ws://127.0.0.1:${server.port}/services/code-workspaces/api/ws/code/w1?token=hub-token`
    );
    const socket = new client.serverSettings.WebSocket(url, 'tty');
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    });
    socket.close();
    expect(server.sessions[0].url).toBe(
      '/services/code-workspaces/api/ws/code/w1?token=hub-token'
    );
  });

  it('follows the page config: the service when it names one, else the page server', () => {
    const page = server.settings();
    expect(clientFromPageConfig(page, 'http://unused').mode).toBe('server');
    expect(clientFromPageConfig(page, 'http://unused').serverSettings).toBe(
      page
    );
    PageConfig.setOption(SERVICE_URL_OPTION, '/services/code-workspaces/');
    PageConfig.setOption('token', 'page-token');
    try {
      const client = clientFromPageConfig(page, 'https://hub.example');
      expect(client.mode).toBe('service');
      expect(client.serverSettings.baseUrl).toBe(
        'https://hub.example/services/code-workspaces/'
      );
      expect(client.serverSettings.token).toBe('page-token');
      expect(client.terminalUrl('w1')).toBe(
        'wss://hub.example/services/code-workspaces/api/ws/code/w1?token=page-token'
      );
    } finally {
      PageConfig.setOption('token', '');
    }
  });
});
