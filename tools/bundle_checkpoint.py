#!/usr/bin/env python
"""Bundle a trained run's weights into the package, so that the demo runs right after install.

    python tools/bundle_checkpoint.py RUN_DIR [--out r3d/assets/sample/checkpoint] [--dtype float16]

Reads RUN_DIR/model.safetensors + model.json (what tools/train.py exports) and writes a compact copy: every float32
tensor stored in --dtype (float16 halves the file; a tensor that would overflow it stays float32), model.json with a
`bundle` record (source run, stored dtype, largest rounding error). Loading casts the weights back to float32, and
never unpickles anything. `tools/demo.py` uses this folder when --checkpoint is not given; setup.cfg's package_data
(`assets/**/*`) ships it in the wheel.
Exit codes: 0 written, 2 bad input (no such checkpoint, not safetensors, unknown dtype).
"""
import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", metavar="RUN_DIR", help="run folder of tools/train.py, or its model.safetensors")
    ap.add_argument("--out", help="output folder (default: the package's r3d/assets/sample/checkpoint)")
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"],
                    help="storage type of the float32 tensors (default: %(default)s)")
    args = ap.parse_args(argv)
    from r3d.engine.export import bundle_checkpoint  # after parsing, so that --help answers at once

    try:
        rec = bundle_checkpoint(args.checkpoint, args.out, args.dtype)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    kept = f", {len(rec['float32_tensors'])} tensor(s) kept in float32" if rec["float32_tensors"] else ""
    print(f"wrote {rec['out']}: {rec['bundle_bytes'] / 1024:.0f} KB ({rec['source_bytes'] / 1024:.0f} KB of "
          f"float32 weights stored as {rec['stored_dtype']}{kept}; largest rounding error "
          f"{rec['max_abs_rounding_error']:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
