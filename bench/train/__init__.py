"""Training: a pure-PyTorch loop (loop.py) and the Ray Train edge (ray_train.py)."""
