"""`python -m bench [--quick]`: run every benchmark module in this package, one after another."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def main() -> None:
    args = sys.argv[1:]
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        print(f"\n=== bench.{info.name}", flush=True)
        module.main(args)


if __name__ == "__main__":
    main()
