"""The Docker Swarm backend: one service, overlay network and node-pinned volume per workspace."""

from .manager import SwarmContainerManager

__all__ = ["SwarmContainerManager"]
