// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The steps before a terminal connects: ask about the workspace, then ensure
 * its container (starting a stopped one, creating a missing one), saying
 * which step is under way.
 */

import type { Workspace, WorkspacesClient } from '../api';
import type { ConnectionPhase, IConnectionTexts } from './status';

/**
 * What the steps report to the connection.
 */
export interface IEnsureSteps {
  /** Whether the attempt was overtaken meanwhile: then nothing more happens. */
  stale(): boolean;
  status(phase: ConnectionPhase, message: string, canRetry?: boolean): void;
  /** The workspace's record, as fetched. */
  workspace(workspace: Workspace): void;
}

/**
 * Ensure a workspace's container, reporting each step.
 *
 * @returns true when the container is there to connect to; false when the
 * attempt went stale or the server has no container to give (reported).
 * @throws what the client throws
 */
export async function ensureWorkspace(
  client: WorkspacesClient,
  id: string,
  texts: IConnectionTexts,
  steps: IEnsureSteps
): Promise<boolean> {
  steps.status('checking', texts.checking);
  const workspace = await client.get(id);
  if (steps.stale()) {
    return false;
  }
  steps.workspace(workspace);
  const state = workspace.container?.status;
  if (state === 'missing' || state === 'dead') {
    steps.status('creating', texts.creating);
  } else if (state !== 'running') {
    steps.status('starting', texts.starting);
  }
  const ensured = await client.ensure(id);
  if (steps.stale()) {
    return false;
  }
  if (ensured.status === 'no_container') {
    steps.status(
      'failed',
      texts.failed(ensured.message || texts.noContainer),
      true
    );
    return false;
  }
  return true;
}
