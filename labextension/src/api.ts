// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Client of the server extension's REST API (`api/code/workspaces`).
 */

import { URLExt } from '@jupyterlab/coreutils';
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
 * Limits of the wire contract (docs/openapi.yaml).
 */
export const limits = {
  nameMaxLength: wire.nameMaxLength,
  repoMaxLength: wire.repoMaxLength,
  branchMaxLength: wire.branchMaxLength
};

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
 * Make a request to the workspaces API and parse its JSON answer.
 *
 * @throws WorkspaceRequestError on a non-2xx answer,
 * ServerConnection.NetworkError when the server cannot be reached.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit,
  settings: ServerConnection.ISettings
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_PATH, endPoint);
  const response = await ServerConnection.makeRequest(url, init, settings);
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
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  async list(): Promise<Workspace[]> {
    const body = await requestAPI<
      operations['listWorkspaces']['responses'][200]['content']['application/json']
    >('', { method: 'GET' }, this.serverSettings);
    return body.workspaces;
  }

  create(spec: WorkspaceSpec): Promise<Workspace> {
    return requestAPI<Workspace>(
      '',
      { method: 'POST', body: JSON.stringify(spec) },
      this.serverSettings
    );
  }

  get(id: string): Promise<Workspace> {
    return requestAPI<Workspace>(
      encodeURIComponent(id),
      { method: 'GET' },
      this.serverSettings
    );
  }

  rename(id: string, name: string): Promise<Workspace> {
    return requestAPI<Workspace>(
      encodeURIComponent(id),
      { method: 'PATCH', body: JSON.stringify({ name }) },
      this.serverSettings
    );
  }

  toggleStar(id: string): Promise<Workspace> {
    return requestAPI<Workspace>(
      `${encodeURIComponent(id)}/star`,
      { method: 'POST' },
      this.serverSettings
    );
  }

  async remove(id: string): Promise<void> {
    await requestAPI<void>(
      encodeURIComponent(id),
      { method: 'DELETE' },
      this.serverSettings
    );
  }

  ensure(id: string): Promise<EnsureResult> {
    return requestAPI<EnsureResult>(
      `${encodeURIComponent(id)}/ensure`,
      { method: 'POST' },
      this.serverSettings
    );
  }

  /**
   * URL of the terminal relay of a workspace.
   *
   * Like JupyterLab's kernel and terminal sockets, it carries the token only
   * when the settings say so: a browser on the server's own host is
   * authenticated by its cookie, and a WebSocket cannot send headers.
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
