#!/bin/bash
# Container entrypoint: refuse to run without a ttyd credential, start the first-start clone in the
# background, then exec ttyd serving one shared tmux session (a reconnect reattaches to it).
set -euo pipefail

if [ -z "${TTYD_CREDENTIAL:-}" ]; then
	echo "entrypoint: TTYD_CREDENTIAL is not set; refusing to start an unauthenticated terminal." >&2
	echo "entrypoint: pass TTYD_CREDENTIAL=user:password (the server generates one per workspace)." >&2
	exit 64
fi
case "$TTYD_CREDENTIAL" in
?*:?*) ;;
*)
	echo "entrypoint: TTYD_CREDENTIAL must have the form user:password; refusing to start." >&2
	exit 64
	;;
esac
credential="$TTYD_CREDENTIAL"
# The shell does not need the terminal's password in its environment.
unset TTYD_CREDENTIAL

export WORKSPACE_DIR="${WORKSPACE_DIR:-$HOME/workspace}"
export WORKSPACE_CLONE_STATE="/tmp/workspace-clone"
# /tmp lives in the container layer and survives a restart: start every boot with a clean state.
rm -rf "$WORKSPACE_CLONE_STATE"
mkdir -p "$WORKSPACE_CLONE_STATE"

if [ -n "${REPO_URL:-}" ]; then
	# Clone at container start (not only when a terminal opens); the shell shows its progress.
	# The double fork hands the job to init (docker --init) instead of leaving an unreaped child of ttyd.
	: >"$WORKSPACE_CLONE_STATE/requested"
	(/usr/local/bin/workspace-clone </dev/null >/dev/null 2>&1 &)
fi

# A restarted container keeps /tmp: drop the dead tmux server's socket so a fresh one starts cleanly.
rm -rf "/tmp/tmux-$(id -u)"

# tmux (and so every new window) starts in the workspace folder when it exists.
cd "$WORKSPACE_DIR" 2>/dev/null || cd "$HOME"

# ttyd's default 5 s keepalive hangs up on a relay that stops reading during backpressure (the
# pongs wait behind the output); the relay keeps both legs alive itself. 0 would stop all output.
exec ttyd \
	--writable \
	--port 7681 \
	--credential "$credential" \
	--terminal-type xterm-256color \
	--ping-interval 3600 \
	-t disableLeaveAlert=true \
	-t disableResizeOverlay=true \
	tmux -u new-session -A -s workspace /usr/local/bin/workspace-shell
