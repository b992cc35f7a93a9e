"""Run benchmark scenarios.

    python -m bench --list              name the scenarios
    python -m bench NAME [--json]       run one (NAME: a module in bench/scenarios/)
    python -m bench all [--json]        run them all
    --quick                             smaller sizes, for a smoke run

Each figure is printed as one JSON object per line: name, value, unit, and for a comparison
baseline, baseline_value and ratio. Quote medians and ratios measured in one run: these
machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from typing import Any

import bench.scenarios

REQUIRED = {"name", "value", "unit"}


def scenario_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench.scenarios.__path__))


def run_scenario(name: str, quick: bool) -> list[dict[str, Any]]:
    module = importlib.import_module(f"bench.scenarios.{name}")
    figures: list[dict[str, Any]] = module.run(quick=quick)
    for figure in figures:
        missing = REQUIRED - figure.keys()
        if missing:
            raise ValueError(f"scenario {name}: figure {figure} lacks {sorted(missing)}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("name", nargs="?", help="scenario name, or 'all'")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--list", action="store_true", help="name the scenarios")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args(argv)
    names = scenario_names()
    if args.list or not args.name:
        for name in names:
            module = importlib.import_module(f"bench.scenarios.{name}")
            print(f"{name:12} {getattr(module, 'DESCRIPTION', '')}")
        return 0
    wanted = names if args.name == "all" else [args.name]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown scenario {unknown[0]!r}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    for name in wanted:
        started = time.perf_counter()
        figures = run_scenario(name, args.quick)
        for figure in figures:
            if args.json:
                print(json.dumps({"scenario": name, **figure}, ensure_ascii=False), flush=True)
            else:
                ratio = (
                    f"  (×{figure['ratio']:.2f} vs {figure['baseline']})"
                    if "ratio" in figure
                    else ""
                )
                print(f"{figure['name']:40} {figure['value']:>12.4g} {figure['unit']}{ratio}")
        if not args.json:
            print(f"-- {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
