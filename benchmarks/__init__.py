"""r3d's performance benchmarks (not installed with the package): one module per figure, run by `python -m benchmarks`.

Run from the repository root. `figures.run_bench` runs the registered figures; `timing` holds the interleaved A/B
timing every figure uses; `common` the benchmark model, random batches, a dataset to read and the trainer's step.
"""
