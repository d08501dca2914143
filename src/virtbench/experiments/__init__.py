"""Experiments: fixed-work workloads (postmark, seqread), consolidation, CPU caps, tuning.

Each experiment is one module with a params dataclass, a function that runs it and an
analysis that fills an :class:`virtbench.results.model.ExperimentResult`. Experiments that
can be compared by ``virtbench tune`` name their headline figure in
``summary["main_metric"]`` (see :mod:`virtbench.experiments.metric`).
"""
