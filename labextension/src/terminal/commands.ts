// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The commands on the current terminal panel: reconnect, copy, paste.
 */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { Clipboard } from '@jupyterlab/apputils';
import { copyIcon, pasteIcon, refreshIcon } from '@jupyterlab/ui-components';
import type { Texts } from '../texts';
import { CommandIDs } from '../tokens';
import type { WorkspaceTerminal } from './widget';

/**
 * Add the terminal commands.
 */
export function addTerminalCommands(
  app: JupyterFrontEnd,
  tracker: WidgetTracker<MainAreaWidget<WorkspaceTerminal>>,
  texts: Texts
): void {
  const { commands, shell } = app;
  const trans = texts.trans;

  /**
   * The terminal the user is looking at, if the current widget is one.
   */
  const currentTerminal = (): WorkspaceTerminal | null => {
    const current = tracker.currentWidget;
    return current && shell.currentWidget === current ? current.content : null;
  };

  commands.addCommand(CommandIDs.reconnect, {
    label: trans.__('Reconnect Code Workspace Terminal'),
    caption: trans.__('Ensure the container runs and reconnect the terminal'),
    icon: args => (args['isPalette'] ? undefined : refreshIcon),
    execute: () => {
      const current = tracker.currentWidget;
      if (!current) {
        return;
      }
      shell.activateById(current.id);
      return current.content.reconnect();
    },
    isEnabled: () => tracker.currentWidget !== null,
    describedBy: { args: { type: 'object', properties: {} } }
  });

  commands.addCommand(CommandIDs.copy, {
    label: trans.__('Copy'),
    icon: copyIcon.bindprops({ stylesheet: 'menuItem' }),
    execute: () => {
      const terminal = currentTerminal();
      const text = terminal?.getSelection();
      if (terminal && text) {
        Clipboard.copyToSystem(text);
        terminal.activate();
      }
    },
    isEnabled: () => currentTerminal()?.hasSelection() ?? false,
    describedBy: { args: { type: 'object', properties: {} } }
  });

  commands.addCommand(CommandIDs.paste, {
    label: trans.__('Paste'),
    icon: pasteIcon.bindprops({ stylesheet: 'menuItem' }),
    execute: async () => {
      const terminal = currentTerminal();
      if (!terminal) {
        return;
      }
      const text = await window.navigator.clipboard.readText();
      if (text) {
        terminal.paste(text);
        terminal.activate();
      }
    },
    isEnabled: () => currentTerminal() !== null,
    describedBy: { args: { type: 'object', properties: {} } }
  });

  // Enabled states follow the current widget.
  const notify = () => {
    [CommandIDs.reconnect, CommandIDs.copy, CommandIDs.paste].forEach(id =>
      commands.notifyCommandChanged(id)
    );
  };
  tracker.currentChanged.connect(notify);
  shell.currentChanged?.connect(notify);
}
