#!/bin/sh
# Writes (apply), checks (check) or deletes (remove) the workspace firewall of this node, as the
# server gave it:
#   POPEBOT_FIREWALL_RULES  iptables-restore input for our own chains (nothing else is touched)
#   POPEBOT_FIREWALL_JUMPS  one rule per line, "CHAIN match... -j OUR-CHAIN": put first in CHAIN
# `apply` then checks every POPEBOT_FIREWALL_RECHECK seconds that the jumps are still first-class
# (a restarted dockerd re-creates DOCKER-USER) and writes them again when they are not. The rules
# stay when this program stops: workspaces must stay fenced while the service is updated.
set -eu
action="${1:-apply}"
recheck="${POPEBOT_FIREWALL_RECHECK:-10}"

say() { echo "node-firewall: $*" >&2; }

# The backend (nft or legacy) whose tables hold dockerd's chains on this node.
backend=""
for candidate in iptables-nft iptables-legacy; do
	if "$candidate" -w -S DOCKER-USER >/dev/null 2>&1; then
		backend="$candidate"
		break
	fi
done
[ -n "$backend" ] || { say "no DOCKER-USER chain in either iptables backend: is dockerd running here with its iptables rules?"; exit 1; }

# Here-documents, not pipes: the loops run in this shell, so `return` leaves the function.
jumps_present() {
	while read -r chain rule; do
		[ -n "$chain" ] || continue
		# shellcheck disable=SC2086 # the rule is a list of iptables words
		"$backend" -w -C "$chain" $rule 2>/dev/null || return 1
	done <<-END
		$POPEBOT_FIREWALL_JUMPS
	END
}

write_jumps() {
	while read -r chain rule; do
		[ -n "$chain" ] || continue
		# shellcheck disable=SC2086
		"$backend" -w -C "$chain" $rule 2>/dev/null || "$backend" -w -I "$chain" 1 $rule
	done <<-END
		$POPEBOT_FIREWALL_JUMPS
	END
}

case "$action" in
apply)
	printf '%s' "$POPEBOT_FIREWALL_RULES" | "$backend-restore" -w --noflush
	write_jumps
	say "applied with $backend on $(hostname)"
	trap 'exit 0' TERM INT
	while :; do
		sleep "$recheck" &
		wait $! || true
		if ! jumps_present; then
			say "jumps missing (dockerd restarted?): writing the rules again"
			printf '%s' "$POPEBOT_FIREWALL_RULES" | "$backend-restore" -w --noflush
			write_jumps
		fi
	done
	;;
check)
	# The service's health check: the jumps (and so the chains) are in place.
	jumps_present
	;;
remove)
	while read -r chain rule; do
		[ -n "$chain" ] || continue
		# shellcheck disable=SC2086
		while "$backend" -w -D "$chain" $rule 2>/dev/null; do :; done
	done <<-END
		$POPEBOT_FIREWALL_JUMPS
	END
	for chain in $POPEBOT_FIREWALL_CHAINS; do
		"$backend" -w -F "$chain" 2>/dev/null || true
		"$backend" -w -X "$chain" 2>/dev/null || true
	done
	say "removed on $(hostname)"
	;;
*)
	say "usage: node-firewall apply|remove"
	exit 2
	;;
esac
