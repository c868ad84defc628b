"""bench perf's definitions and small helpers, without running a benchmark (the fast tier's
share of bench/perf; tests/perf/test_perf.py runs the sections themselves, marked slow)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from bench.perf import baselines, batches, pairings, pipeline, run, sweeps
from bench.preflight import check_fold_counts
from bench.tune.clock import TrialClock


def test_every_sections_definition_validates_with_the_sizes_it_names(tmp_path):
    assert batches.config(4, 12, 2, str(tmp_path)).search.batch == 4
    sweep = sweeps.sweep_config(16, 2, 3, str(tmp_path))
    assert (sweep.search.trials, sweep.cv.folds, sweep.budget.epochs) == (16, 3, 2)
    quick = baselines.quick_default(str(tmp_path))
    assert quick.models == ["mlp", "simple_cnn"] and quick.search.trials == 4
    assert "resnet18" in baselines.full_default(str(tmp_path)).models


def test_pairing_copies_are_identical_trees_the_preflight_accepts(tmp_path):
    copies = pairings.write_copies(tmp_path, 3)
    config = pairings.tiny_config(copies, str(tmp_path / "out"))
    assert len(config.pairings()) == 6 and config.name == "perf-pairings-6"
    pngs = [sorted(p.name for p in c.rglob("*.png")) for c in copies]
    assert pngs[0] == pngs[1] == pngs[2] and len(pngs[0]) == len(pairings.CLASSES) * 200
    check_fold_counts(config)  # labels read without decoding: 200 a class, 2 folds


def test_quick_keeps_every_section_smaller():
    for field in dataclasses.fields(run.PerfPlan):
        if field.name == "default_changes":
            continue  # the tests' own scaling
        full, quick = getattr(run.FULL, field.name), getattr(run.QUICK, field.name)
        if isinstance(full, tuple):
            assert max(quick) <= max(full) and len(quick) >= 1, field.name
        elif isinstance(full, bool):
            assert quick and not full  # quick scales the default benchmark down
        else:
            assert 0 < quick <= full, field.name
    assert run.machine()


def test_naive_fits_are_spread_over_the_whole_list():
    fits = [baselines.Fit("m", "d", {"i": i}, fold=i % 3) for i in range(10)]
    picked = baselines._spread(fits, 4)
    assert [f.params["i"] for f in picked] == [0, 2, 5, 7]
    assert baselines._spread(fits, 20) == fits


def test_the_plain_pipeline_reads_a_tree_torchvision_can_read(tmp_path):
    root = pipeline.write_tree(tmp_path / "tree", 40)
    assert sum(1 for _ in root.rglob("*.png")) == 40
    assert pipeline.plain_seconds(root, epochs=1, workers=0) > 0


def test_trial_clock_times_each_trial_on_the_drivers_clock():
    clock, trial = TrialClock(), SimpleNamespace(trial_id="t1")
    clock.on_trial_start(0, [], trial)
    clock.on_trial_complete(1, [], trial)
    assert clock.wall("t1") >= 0
