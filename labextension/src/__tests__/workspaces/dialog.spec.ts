/**
 * @jest-environment @jupyterlab/testing/lib/jest-env.js
 */
// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

// The DOM shims JupyterLab's widgets need (this file only: the others run in node).
import '@jupyterlab/testing/lib/jest-shim.js';
import type { WorkspaceSpec } from '../../api';
import { WorkspaceRequestError } from '../../api';
import { CreateWorkspaceDialog } from '../../workspaces/dialog';
import { texts } from '../../texts';
import { until } from '../wireserver';

const QUOTA =
  'You already have 5 running workspaces, the most this server allows (5). Stop or delete one first.';

describe('CreateWorkspaceDialog', () => {
  it("shows a quota refusal's message above the buttons and stays open", async () => {
    const asked: WorkspaceSpec[] = [];
    const refused = new WorkspaceRequestError(
      { status: 403, statusText: 'Forbidden' } as Response,
      QUOTA
    );
    const dialog = new CreateWorkspaceDialog({
      texts: texts(),
      create: spec => {
        asked.push(spec);
        return Promise.reject(refused);
      },
      initial: { name: 'demo', repo: 'octo/demo', branch: '' }
    });
    const result = dialog.launch();
    let settled = false;
    void result.then(() => (settled = true));
    await until(() => dialog.isAttached, 'dialog attached');
    dialog.resolve(1); // the Create button

    const formError = dialog.node.querySelector<HTMLElement>(
      '.jp-CodeWorkspaces-formError'
    )!;
    await until(() => !formError.hidden, 'form error shown');
    expect(formError.textContent).toBe(QUOTA);
    expect(formError.getAttribute('role')).toBe('alert');
    expect(asked).toEqual([{ name: 'demo', repo: 'octo/demo', branch: '' }]);
    // No field is blamed, the fields can be edited again, the dialog stays.
    expect(dialog.node.querySelectorAll('[aria-invalid="true"]')).toHaveLength(
      0
    );
    const name =
      dialog.node.querySelector<HTMLInputElement>('input[name="name"]')!;
    expect(name.disabled).toBe(false);
    await new Promise(resolve => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    expect(dialog.isDisposed).toBe(false);
    dialog.resolve(0); // Cancel
    await result;
  });
});
