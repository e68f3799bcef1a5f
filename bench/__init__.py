"""The benchmark: bench/benchmark.py, the bare reference apps and the wrk scripts."""
