"""The data audit: likely label errors and near-duplicate images, found from what a run already
computed (the chosen trials' out-of-fold predictions, the kept models' test predictions, the
image cache), and what leaving them out does to the ranking. Imports neither Ray nor Tune."""
