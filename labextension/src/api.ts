// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Client of the server extension's REST API (`api/code/workspaces`).
 */

import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { components, operations } from './generated/openapi';
import { wire } from './generated/openapi';

type Schemas = components['schemas'];

/**
 * A workspace as the server sends it. Lists and `get` add its container's
 * status; the answers of create, rename and star do not.
 */
export type Workspace = Schemas['Workspace'] &
  Partial<Pick<Schemas['WorkspaceWithStatus'], 'container'>>;

/**
 * Docker states of a workspace's container, plus the server's own two.
 */
export type ContainerStatus =
  Schemas['WorkspaceWithStatus']['container']['status'];

/**
 * What a create request carries (the dialog always sends every field).
 */
export type WorkspaceSpec = Required<Schemas['WorkspaceCreate']>;

/**
 * The fields a validation error can point at.
 */
export type WorkspaceField = keyof WorkspaceSpec;

/**
 * Outcome of `ensure`.
 */
export type EnsureResult =
  operations['ensureContainer']['responses'][200]['content']['application/json'];

/**
 * Outcome of `stop`.
 */
export type StopResult =
  operations['stopContainer']['responses'][200]['content']['application/json'];

/**
 * A TCP port a workspace listens on, with the URL of its preview.
 */
export type Port = Schemas['Port'];

/**
 * Outcome of `ports`: the workspace's status, its listening ports (lowest
 * first) and the preview URL of any port (`url_template`).
 */
export type PortList =
  operations['listPorts']['responses'][200]['content']['application/json'];

/**
 * Limits of the wire contract (docs/openapi.yaml).
 */
export const limits = {
  nameMaxLength: wire.nameMaxLength,
  repoMaxLength: wire.repoMaxLength,
  branchMaxLength: wire.branchMaxLength,
  portMinimum: wire.portMinimum,
  portMaximum: wire.portMaximum
};

/**
 * What `url_template` has where the port goes.
 */
export const PORT_PLACEHOLDER = '{port}';

/**
 * Whether a value is a TCP port a preview can be opened on.
 */
export function isPort(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= limits.portMinimum &&
    value <= limits.portMaximum
  );
}

/**
 * The preview URL of a port from a listing's `url_template`.
 *
 * @throws Error when the port is out of range or the template has no
 * placeholder (it would open the same page for every port).
 */
export function previewUrlFromTemplate(template: string, port: number): string {
  if (!isPort(port)) {
    throw new Error(`Not a TCP port: ${port}`);
  }
  if (!template.includes(PORT_PLACEHOLDER)) {
    throw new Error(`The preview URL template has no ${PORT_PLACEHOLDER}`);
  }
  return template.split(PORT_PLACEHOLDER).join(String(port));
}

/**
 * Make a preview URL the server gave (an absolute path on the server, or a
 * full URL in host mode) absolute, for a browser tab or the clipboard.
 *
 * @throws Error when it is not an http(s) URL (e.g. `javascript:`), which
 * must never reach an iframe or `window.open`.
 */
export function absolutePreviewUrl(url: string, base: string): string {
  const resolved = new URL(url, base);
  if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') {
    throw new Error(`Not a web address: ${url}`);
  }
  return resolved.href;
}

function isWorkspaceField(value: unknown): value is WorkspaceField {
  return (wire.workspaceFields as readonly unknown[]).includes(value);
}

const API_PATH = 'api/code/workspaces';
const WS_PATH = 'api/ws/code';

/**
 * A non-2xx answer, carrying the server's `message` and, for validation
 * errors, the `field` it is about.
 */
export class WorkspaceRequestError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly field: WorkspaceField | null = null
  ) {
    super(response, message);
    this.name = 'WorkspaceRequestError';
  }

  /**
   * The HTTP status of the answer.
   */
  get status(): number {
    return this.response.status;
  }
}

/**
 * Turn a non-2xx response into an error with the best message available.
 */
export async function responseError(
  response: Response
): Promise<WorkspaceRequestError> {
  const text = await response.text().catch(() => '');
  let message = '';
  let field: WorkspaceField | null = null;
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') {
      message = String(body.message || body.reason || '');
      if (isWorkspaceField(body.field)) {
        field = body.field;
      }
    }
  } catch {
    // Not JSON (e.g. a proxy's HTML error page): fall through to the status.
  }
  if (!message) {
    message =
      `The server answered ${response.status} ${response.statusText}`.trim();
  }
  return new WorkspaceRequestError(response, message, field);
}

/**
 * Where the workspaces API is and how to authenticate to it.
 *
 * - `server`: the page's own Jupyter server (single-user mode), called as
 *   JupyterLab calls it: token header and/or cookie with the XSRF header.
 * - `service`: a separate service (JupyterHub mode, `codeWorkspacesServiceUrl`
 *   in the page config), called with the page's token only: no cookies, so no
 *   XSRF cookie or header either.
 */
export type ClientMode = 'server' | 'service';

/**
 * The page-config key that switches the client to a service.
 */
export const SERVICE_URL_OPTION = 'codeWorkspacesServiceUrl';

/**
 * Settings that send every call to the service at `serviceUrl`, an absolute
 * path on the page's origin such as `/services/code-workspaces/`.
 *
 * @throws Error when `serviceUrl` is not an absolute path.
 */
export function serviceSettings(
  serviceUrl: string,
  origin: string,
  token: string,
  overrides: Partial<ServerConnection.ISettings> = {}
): ServerConnection.ISettings {
  const path = serviceUrl.trim();
  // "//host/..." would leave the page's origin: only paths on it are allowed.
  if (!path.startsWith('/') || path.startsWith('//')) {
    throw new Error(
      `${SERVICE_URL_OPTION} must be an absolute path such as /services/code-workspaces/, not "${serviceUrl}"`
    );
  }
  const baseUrl = new URL(path.endsWith('/') ? path : `${path}/`, origin).href;
  return ServerConnection.makeSettings({
    baseUrl,
    wsUrl: `ws${baseUrl.slice(4)}`, // http -> ws, https -> wss
    token,
    // A WebSocket cannot carry headers: the token goes in its URL.
    appendToken: true,
    init: { cache: 'no-store', credentials: 'omit' },
    ...overrides
  });
}

/**
 * The client the page config asks for: the service named by
 * `codeWorkspacesServiceUrl` with the page's token, or else the page's server.
 */
export function clientFromPageConfig(
  pageSettings: ServerConnection.ISettings,
  origin: string = window.location.origin
): WorkspacesClient {
  const serviceUrl = PageConfig.getOption(SERVICE_URL_OPTION);
  if (!serviceUrl) {
    return new WorkspacesClient(pageSettings);
  }
  return new WorkspacesClient(
    serviceSettings(serviceUrl, origin, PageConfig.getToken(), {
      fetch: pageSettings.fetch,
      Request: pageSettings.Request,
      Headers: pageSettings.Headers,
      WebSocket: pageSettings.WebSocket
    }),
    'service'
  );
}

/**
 * Send a request to a service with its token and nothing else: no cookies, so
 * neither the page server's XSRF cookie nor its header go along.
 */
async function serviceRequest(
  url: string,
  init: RequestInit,
  settings: ServerConnection.ISettings
): Promise<Response> {
  // As JupyterLab does: an explicit cache buster, since no-store is not enough everywhere.
  const busted = `${url}${url.includes('?') ? '&' : '?'}${Date.now()}`;
  const request = new settings.Request(busted, {
    ...settings.init,
    ...init,
    credentials: 'omit'
  });
  request.headers.set('Authorization', `token ${settings.token}`);
  if (!request.headers.has('Content-Type')) {
    request.headers.set('Content-Type', 'application/json');
  }
  try {
    return await settings.fetch.call(null, request);
  } catch (reason) {
    throw new ServerConnection.NetworkError(reason as TypeError);
  }
}

/**
 * Make a request to the workspaces API and parse its JSON answer.
 *
 * @throws WorkspaceRequestError on a non-2xx answer,
 * ServerConnection.NetworkError when the server cannot be reached.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit,
  settings: ServerConnection.ISettings,
  mode: ClientMode = 'server'
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_PATH, endPoint);
  const response =
    mode === 'service'
      ? await serviceRequest(url, init, settings)
      : await ServerConnection.makeRequest(url, init, settings);
  if (!response.ok) {
    throw await responseError(response);
  }
  if (response.status === 204) {
    return undefined as T;
  }
  return (await response.json()) as T;
}

/**
 * Typed calls of the workspaces API.
 */
export class WorkspacesClient {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings(),
    readonly mode: ClientMode = 'server'
  ) {}

  async list(): Promise<Workspace[]> {
    const body = await requestAPI<
      operations['listWorkspaces']['responses'][200]['content']['application/json']
    >('', { method: 'GET' }, this.serverSettings, this.mode);
    return body.workspaces;
  }

  create(spec: WorkspaceSpec): Promise<Workspace> {
    return requestAPI<Workspace>(
      '',
      { method: 'POST', body: JSON.stringify(spec) },
      this.serverSettings,
      this.mode
    );
  }

  get(id: string): Promise<Workspace> {
    return requestAPI<Workspace>(
      encodeURIComponent(id),
      { method: 'GET' },
      this.serverSettings,
      this.mode
    );
  }

  rename(id: string, name: string): Promise<Workspace> {
    return requestAPI<Workspace>(
      encodeURIComponent(id),
      { method: 'PATCH', body: JSON.stringify({ name }) },
      this.serverSettings,
      this.mode
    );
  }

  toggleStar(id: string): Promise<Workspace> {
    return requestAPI<Workspace>(
      `${encodeURIComponent(id)}/star`,
      { method: 'POST' },
      this.serverSettings,
      this.mode
    );
  }

  async remove(id: string): Promise<void> {
    await requestAPI<void>(
      encodeURIComponent(id),
      { method: 'DELETE' },
      this.serverSettings,
      this.mode
    );
  }

  ensure(id: string): Promise<EnsureResult> {
    return requestAPI<EnsureResult>(
      `${encodeURIComponent(id)}/ensure`,
      { method: 'POST' },
      this.serverSettings,
      this.mode
    );
  }

  /**
   * Stop the workspace's container; its files stay and the next ensure
   * starts it again.
   */
  stop(id: string): Promise<StopResult> {
    return requestAPI<StopResult>(
      `${encodeURIComponent(id)}/stop`,
      { method: 'POST' },
      this.serverSettings,
      this.mode
    );
  }

  /**
   * The TCP ports the workspace listens on; never starts it.
   */
  ports(id: string): Promise<PortList> {
    return requestAPI<PortList>(
      `${encodeURIComponent(id)}/ports`,
      { method: 'GET' },
      this.serverSettings,
      this.mode
    );
  }

  /**
   * URL of the terminal relay of a workspace.
   *
   * Like JupyterLab's kernel and terminal sockets, it carries the token only
   * when the settings say so: a browser on the server's own host is
   * authenticated by its cookie, and a WebSocket cannot send headers. A
   * service (client mode) always gets the token this way.
   */
  terminalUrl(id: string): string {
    const settings = this.serverSettings;
    let url = URLExt.join(settings.wsUrl, WS_PATH, encodeURIComponent(id));
    if (settings.appendToken && settings.token) {
      url += `?token=${encodeURIComponent(settings.token)}`;
    }
    return url;
  }
}
