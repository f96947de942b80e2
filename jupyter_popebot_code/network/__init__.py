"""What a workspace may reach: the network policy, its firewall rules and the host-side command."""
