#!/bin/bash
# Container entrypoint: refuse to run without a ttyd credential, start the first-start clone in the
# background, then exec ttyd serving one shared terminal session (workspace-session: a reconnect
# reattaches to the same shell and gets its recent output replayed).
#
# It starts as root and keeps only ttyd there: the user (coder) must never learn the credential, and
# a process of another uid is one whose environment coder cannot read and cannot ptrace. Everything
# the user runs (the clone, the session and its shell) starts as coder with no capabilities. ttyd takes
# the credential only as an argument, and every process's arguments are public: ttyd gets a
# placeholder and the ttyd-credential.so shim puts the real value in before ttyd reads it.
set -euo pipefail

readonly WORKSPACE_USER=coder
# Run a command as the workspace user: no capabilities, its own groups.
as_user() {
	setpriv --reuid="$WORKSPACE_USER" --regid="$WORKSPACE_USER" --init-groups --inh-caps=-all -- "$@"
}

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
if [ "$(id -u)" != 0 ]; then
	echo "entrypoint: must start as root (it runs the terminal as $WORKSPACE_USER and keeps its" >&2
	echo "entrypoint: credential out of that user's reach); do not set the container's user." >&2
	exit 64
fi

export WORKSPACE_DIR="${WORKSPACE_DIR:-$HOME/workspace}"
export WORKSPACE_CLONE_STATE="/tmp/workspace-clone"

# Whatever runs as the user runs in a subshell without the credential: it stays exported only for
# ttyd (an `env -u` or `VAR=` prefix would show up in a process's arguments).
(
	unset TTYD_CREDENTIAL
	# The home folder is the workspace's volume, or (older volumes) a fresh tmpfs owned by root
	# with the volume mounted inside it: give it to the user, and put the skeleton dotfiles in
	# and the workspace folder when they are missing (a new volume on a disk image is empty).
	if [ "$(stat -c %U "$HOME")" != "$WORKSPACE_USER" ]; then
		chmod 0755 "$HOME" # before the chown: root keeps no CAP_FOWNER
		chown "$WORKSPACE_USER:$WORKSPACE_USER" "$HOME"
	fi
	# useradd makes the home 0700, and root here has no CAP_DAC_OVERRIDE: ttyd (root) must enter it.
	as_user chmod 0755 "$HOME"
	[ -e "$HOME/.bashrc" ] || as_user cp -R /etc/skel/. "$HOME/"
	as_user mkdir -p "$WORKSPACE_DIR"
	# /tmp may survive a restart (no tmpfs): start every boot with a clean state, and drop a dead
	# session's socket (and a tmux server's, if the user ran one) so a fresh one starts cleanly.
	uid="$(id -u "$WORKSPACE_USER")"
	as_user rm -rf "$WORKSPACE_CLONE_STATE" "/tmp/workspace-session-$uid" "/tmp/tmux-$uid"
	as_user mkdir -p "$WORKSPACE_CLONE_STATE"
	if [ -n "${REPO_URL:-}" ]; then
		# Clone at container start (not only when a terminal opens); the shell shows its progress.
		# The double fork hands the job to init (docker --init) instead of leaving an unreaped child of ttyd.
		as_user touch "$WORKSPACE_CLONE_STATE/requested"
		(as_user /usr/local/bin/workspace-clone </dev/null >/dev/null 2>&1 &)
	fi
)

# The session's shell starts in the workspace folder when it exists.
cd "$WORKSPACE_DIR" 2>/dev/null || cd "$HOME"

# ttyd's default 5 s keepalive hangs up on a relay that stops reading during backpressure (the
# pongs wait behind the output); the relay keeps both legs alive itself. 0 would stop all output.
export LD_PRELOAD=/usr/local/lib/ttyd-credential.so
exec ttyd \
	--writable \
	--port 7681 \
	--credential @TTYD_CREDENTIAL@ \
	--terminal-type xterm-256color \
	--ping-interval 3600 \
	-t disableLeaveAlert=true \
	-t disableResizeOverlay=true \
	setpriv --reuid="$WORKSPACE_USER" --regid="$WORKSPACE_USER" --init-groups --inh-caps=-all -- \
	workspace-session attach /usr/local/bin/workspace-shell
