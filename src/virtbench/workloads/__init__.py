"""Native workloads of the UnixBench-compatible suite.

* :mod:`virtbench.workloads.profiles` - compiler flag profiles (unixbench-6, unixbench-5.1.3)
* :mod:`virtbench.workloads.build` - compile the C programs in ``c/`` into a cache
* :mod:`virtbench.workloads.catalog` - one :class:`WorkloadSpec` per test, groups, selection
* :mod:`virtbench.workloads.output` - parse the one-line result a program prints
"""
