"""The refit task's module stays lean: its process must not pay for Tune's imports."""

import subprocess
import sys


def test_refit_module_imports_neither_tune_nor_optuna():
    probe = (
        "import sys, bench.tune.refit; "
        "print(sorted(m for m in ('ray.tune', 'ray.train', 'optuna', 'sklearn', 'pandas') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
