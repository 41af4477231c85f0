"""Benchmarks for issue 6: framework overhead, prompt size and cache reuse, the local model
end to end, and ScienceWorld throughput. Run ``python -m bench [perf|prompts|local|sim|all]``.

They print numbers and are never pass/fail tests: the machines are noisy, so ratios are
quoted from one run and the last figures are kept in ``bench/RESULTS.md``.
"""
