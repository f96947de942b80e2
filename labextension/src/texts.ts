// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The user-facing texts that more than one place shows (names, statuses,
 * connection messages, buttons), written once and translated by JupyterLab.
 * Texts that only one widget shows stay beside it.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import { nullTranslator } from '@jupyterlab/translation';
import type { ConnectionPhase, IConnectionTexts } from './connection';
import type { DisplayStatus } from './model';

/**
 * The translation domain of the extension.
 */
export const TRANSLATION_DOMAIN = 'jupyter_popebot_code';

/**
 * The texts in a language.
 */
export function texts(trans?: TranslationBundle): Texts {
  return new Texts(trans ?? nullTranslator.load(TRANSLATION_DOMAIN));
}

/**
 * The texts of one translation bundle.
 */
export class Texts {
  constructor(readonly trans: TranslationBundle) {
    const t = trans;
    this.workspace = t.__('Code Workspace');
    this.workspaces = t.__('Code Workspaces');
    this.newWorkspace = t.__('New Code Workspace…');
    this.cancel = t.__('Cancel');
    this.create = t.__('Create');
    this.stop = t.__('Stop');
    this.stopping = t.__('Stopping the workspace…');
    this.stopped = t.__(
      'The workspace is stopped; its files are kept. Reconnect to start it again.'
    );
    this.connection = {
      checking: t.__('Checking the workspace…'),
      starting: t.__('Starting the container…'),
      creating: t.__('Creating the container…'),
      connecting: t.__('Connecting to the terminal…'),
      waitingForShell: t.__('Waiting for the shell…'),
      shellExited: t.__(
        'The shell exited. Press Enter or Reconnect to start a new one.'
      ),
      disconnected: why => t.__('Disconnected: %1.', why),
      connectionLost: why => t.__('Connection lost: %1.', why),
      reconnectingIn: (seconds, attempt, max) =>
        max > 0
          ? t.__(
              'Reconnecting in %1 s (attempt %2 of %3)…',
              seconds,
              attempt,
              max
            )
          : t.__('Reconnecting in %1 s (attempt %2)…', seconds, attempt),
      gaveUp: attempts => t.__('Gave up after %1 attempts.', attempts),
      notFound: t.__('This workspace no longer exists.'),
      noContainer: t.__('This workspace has no container.'),
      failed: why => t.__('Could not open the terminal: %1', why)
    };
  }

  /** One workspace, as the launcher and a new tab call it. */
  readonly workspace: string;
  /** The sidebar's title and the palette's category. */
  readonly workspaces: string;
  /** The create command and the sidebar's create button. */
  readonly newWorkspace: string;
  readonly cancel: string;
  readonly create: string;
  /** The sidebar's stop button. */
  readonly stop: string;
  /** What an open terminal says while and after its workspace stops. */
  readonly stopping: string;
  readonly stopped: string;
  /** What a terminal says about its connection. */
  readonly connection: IConnectionTexts;

  /**
   * The label of a status dot.
   */
  status(status: DisplayStatus): string {
    const t = this.trans;
    switch (status) {
      case 'running':
        return t.__('Running');
      case 'starting':
        return t.__('Starting');
      case 'error':
        return t.__('Error');
      case 'stopped':
      default:
        return t.__('Stopped');
    }
  }

  /**
   * The label of the terminal's retry button in a phase.
   */
  retry(phase: ConnectionPhase): string {
    const t = this.trans;
    switch (phase) {
      case 'failed':
        return t.__('Retry');
      case 'waiting':
        return t.__('Reconnect now');
      default:
        return t.__('Reconnect');
    }
  }
}
