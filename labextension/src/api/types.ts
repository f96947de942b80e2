// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The wire types of the workspaces API, taken from the generated OpenAPI
 * types, and the contract's limits as values.
 */

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
 * What a create request carries: name, repository and branch always, and the
 * profile when the user chose one (the server's default otherwise).
 */
export type WorkspaceSpec = Required<
  Omit<Schemas['WorkspaceCreate'], 'profile'>
> & { profile?: string };

/**
 * The fields a validation error can point at.
 */
export type WorkspaceField = keyof Required<Schemas['WorkspaceCreate']>;

/**
 * A workspace profile the caller may use (`CodeWorkspacesApp.profiles`).
 */
export type Profile = Schemas['Profile'];

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
