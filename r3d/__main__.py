"""`python -m r3d list`: every registered component (built-in and plugin) with its source and one-line summary."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from r3d.registry import ALL_REGISTRIES, import_custom_modules


def load_builtins() -> None:
    """Import the packages whose modules register the built-in components."""
    import r3d.data.adapters  # noqa: F401
    import r3d.engine.protocols  # noqa: F401
    import r3d.models.anticipator  # noqa: F401
    import r3d.models.regularizers  # noqa: F401


def cmd_list(args: argparse.Namespace) -> int:
    load_builtins()
    import_custom_modules(args.custom_imports or [])
    for reg in ALL_REGISTRIES:
        if args.kind and reg.kind != args.kind:
            continue
        entries = reg.entries()
        print(f"{reg.kind if reg.kind.endswith('s') else reg.kind + 's'} ({len(entries)}):")
        width = max([len(e.name) for e in entries] + [4])
        for e in entries:
            print(f"  {e.name:<{width}}  {e.summary}  [{e.source}]")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m r3d", description="r3d command line helpers")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", help="list every registered component: backbones, fusers, heads, regularisers, "
                                    "datasets, protocols, weight sources")
    p.add_argument("--kind", choices=[reg.kind for reg in ALL_REGISTRIES], help="only this kind")
    p.add_argument("--custom-imports", nargs="*", help="modules to import first (as the config key custom_imports)")
    p.set_defaults(fn=cmd_list)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
