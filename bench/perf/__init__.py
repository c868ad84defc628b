"""`bench perf`: what the harness costs, measured against plain PyTorch on this machine.

Sections (each a module): `sweeps` (per-trial overhead, growth with the number of trials, and
trials sharing a GPU), `baselines` (the default benchmark through bench vs a plain sequential
PyTorch script vs one TorchTrainer per trial and fold), `pipeline` (bench's data path vs
torchvision ImageFolder + DataLoader), `gpu` (bench's trial code vs a plain loop on a GPU,
runnable without Ray as `python -m bench.perf.gpu`) and `pairings` (wall, memory and processes
of runs of 2 to 100 tiny pairings); `profile` charges the CPU of bench's run to its kinds of
process and samples the machine's memory. Every figure is a row of one table, printed and
written to Parquet."""
