"""`bench perf`: what the harness costs, measured against plain PyTorch on this machine.

Sections (each a module): `sweeps` (per-trial overhead and growth with the number of
trials), `baselines` (the default benchmark through bench vs a plain sequential PyTorch
script vs one TorchTrainer per trial and fold), `pipeline` (bench's data path vs torchvision
ImageFolder + DataLoader) and `gpu` (throughput, utilization and GPU sharing; only on a GPU);
`profile` charges the CPU of bench's run to its kinds of process (trial actors, refits, ...).
Every figure is a row of one table, printed and written to Parquet."""
