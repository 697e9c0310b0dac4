"""bssvae's benchmark suite (run ``python -m bench --help``); results go to ``results/bench.json``.

Modules: :mod:`bench.flops` (FLOP counting, matmul peak), :mod:`bench.breakdown` (where a step's
time goes), :mod:`bench.ours` (our training step), :mod:`bench.authors` (a loop in the style of the
authors' code), :mod:`bench.timing` (throughput windows, time-budgeted runs), :mod:`bench.audio`
(the audio model), :mod:`bench.run` (the suite).

OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``) unless the environment says
otherwise. With the default busy-waiting, two PyTorch threads on two cores shared with other
busy processes spin at every barrier while the thread they wait for is descheduled: on this
project's 2-core machine, a training step then ran 3 to 20 times slower than with one thread.
The library chooses from the cores' load when it is imported (:mod:`bssvae.openmp`); the suite
keeps passive waiting, as in every entry of ``results/bench.json`` so far, so that its entries stay
comparable whatever the load was when they started. It must be set before PyTorch starts its
thread pool, hence here, before anything imports torch (and before bssvae, which then leaves it).
``GOMP_SPINCOUNT``, when set, takes precedence over the policy: :mod:`bench.worker` times both
loops with spinning threads that way, in a child process, beside this process's passive ones.
"""
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
