// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Icons of the extension, as LabIcons so they follow JupyterLab's theme
 * (the `jp-icon*` classes recolor them).
 */

import { LabIcon } from '@jupyterlab/ui-components';

/**
 * A terminal window with a prompt and a code branch: a code workspace.
 */
export const workspaceIcon = new LabIcon({
  name: 'jupyter-popebot-code:workspace',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" fill-rule="evenodd" d="M3 3h18a1 1 0 0 1 1 1v16a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1zm1 5v11h16V8z"/>
  <g fill="none" stroke-width="1.9" stroke-linecap="round" stroke-linejoin="round">
    <path class="jp-icon-brand0" stroke="#F37726" d="M6.5 11l3 2.5-3 2.5"/>
    <path class="jp-icon3" stroke="#616161" d="M11.5 16.5h6"/>
  </g>
</svg>`
});

const starPath =
  'M12 3.2l2.7 5.5 6.1.9-4.4 4.3 1 6.1L12 17.1 6.6 20l1-6.1-4.4-4.3 6.1-.9z';

/**
 * A starred workspace.
 */
export const starFilledIcon = new LabIcon({
  name: 'jupyter-popebot-code:star-filled',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon-warn0" fill="#F57C00" stroke-linejoin="round" d="${starPath}"/>
</svg>`
});

/**
 * A workspace that is not starred.
 */
export const starEmptyIcon = new LabIcon({
  name: 'jupyter-popebot-code:star-empty',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g fill="none"><path class="jp-icon3" stroke="#616161" stroke-width="1.6" stroke-linejoin="round" d="${starPath}"/></g>
</svg>`
});
