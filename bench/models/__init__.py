"""torch.nn implementations behind the model registry (imported lazily by the registry)."""
