// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Client of the personal secrets API (`api/code/secrets`): names and metadata
 * come back, values only ever go out.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { WorkspacesClient } from '../api';
import { serviceRequest } from '../api';
import type { components } from '../api/generated/openapi';
import { wire } from '../api/generated/openapi';

const API_PATH = 'api/code/secrets';

export type SecretInfo = components['schemas']['SecretInfo'];
export type SecretPut = components['schemas']['SecretPut'];
export type SecretField = (typeof wire.secretFields)[number];

/**
 * A non-2xx answer: the server's message and the field it is about.
 */
export class SecretRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly field: SecretField | null
  ) {
    super(message);
    this.name = 'SecretRequestError';
  }
}

function isSecretField(value: unknown): value is SecretField {
  return (wire.secretFields as readonly unknown[]).includes(value);
}

/**
 * The caller's personal secrets, on the server (or service) that runs their
 * workspaces.
 */
export class SecretsClient {
  constructor(private readonly _workspaces: WorkspacesClient) {}

  async list(): Promise<SecretInfo[]> {
    const body = await this._request<{ secrets: SecretInfo[] }>('', 'GET');
    return body.secrets;
  }

  put(name: string, secret: SecretPut): Promise<SecretInfo> {
    return this._request<SecretInfo>(
      encodeURIComponent(name),
      'PUT',
      JSON.stringify(secret)
    );
  }

  async remove(name: string): Promise<void> {
    await this._request<void>(encodeURIComponent(name), 'DELETE');
  }

  private async _request<T>(
    path: string,
    method: string,
    body?: string
  ): Promise<T> {
    const { serverSettings: settings, mode } = this._workspaces;
    const url = URLExt.join(settings.baseUrl, API_PATH, path);
    const init: RequestInit = { method, body };
    const response =
      mode === 'service'
        ? await serviceRequest(url, init, settings)
        : await ServerConnection.makeRequest(url, init, settings);
    if (response.ok) {
      return (response.status === 204 ? undefined : await response.json()) as T;
    }
    let message = '';
    let field: SecretField | null = null;
    try {
      const answer = JSON.parse(await response.text());
      message = String(answer?.message || answer?.reason || '');
      field = isSecretField(answer?.field) ? answer.field : null;
    } catch {
      // Not JSON (a proxy's error page): the status says what happened.
    }
    throw new SecretRequestError(
      message || `The server answered ${response.status}`,
      response.status,
      field
    );
  }
}
