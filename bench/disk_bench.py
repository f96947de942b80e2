"""What a disk limit costs: `python -m bench.disk_bench [--image I] [--size 10g] [--rounds 5]`.

Times the helper container of `jupyter_popebot_code.backends.docker.disks` on the real engine: a
first mount (sparse image made, formatted, mounted: added to a create), a mount that finds the
image mounted (added to every start), a mount after an unmount (the first start after a reboot),
and the removal (added to a delete). Runs as root on the Docker host; leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import docker

from jupyter_popebot_code.backends.docker import disks


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", default="jupyter-popebot-code-workspace:latest")
    parser.add_argument("--size", default="10g")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    client = docker.from_env(timeout=120)
    size = disks.parse_size(args.size)
    folder = tempfile.mkdtemp(prefix="popebot-disk-bench-", dir="/var/tmp")
    phases: dict[str, list[float]] = {"create": [], "start": [], "reboot": [], "delete": []}
    for n in range(max(1, min(args.rounds, 50))):
        name = f"bench-{n}"
        phases["create"].append(
            timed(lambda: disks.mount(client, args.image, folder, name, size))  # noqa: B023
        )
        phases["start"].append(
            timed(lambda: disks.mount(client, args.image, folder, name, size))  # noqa: B023
        )
        disks.release(client, args.image, folder, name, remove=False)
        phases["reboot"].append(
            timed(lambda: disks.mount(client, args.image, folder, name, size))  # noqa: B023
        )
        phases["delete"].append(
            timed(lambda: disks.release(client, args.image, folder, name, remove=True))  # noqa: B023
        )
    print(f"disk helper, {args.size} images, {args.rounds} rounds (median / max seconds)")
    for phase, seconds in phases.items():
        print(f"  {phase:<7} {statistics.median(seconds):6.2f} {max(seconds):6.2f}")
    os.rmdir(folder)
    client.close()


if __name__ == "__main__":
    main()
