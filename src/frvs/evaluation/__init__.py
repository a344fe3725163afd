"""Evaluation: how accurate FRVS is, measured the way biometric testing standards report it.

- ``metrics``: ROC, DET, AUC, EER, FNMR@FMR, decision counts, bootstrap intervals, CMC,
  FNIR@FPIR (pure NumPy; tie and reachability rules in its docstring).
- ``datasets``: pairs CSV / LFW ``pairs.txt``; labelled image trees for identification.
- ``groups``: per-group FMR/FNMR and worst-to-best ratios (groups from the evaluator only).
- ``runner``: templates once per image, then verification and identification runs.
- ``calibration``: the threshold for a target FMR, written into the configuration.
- ``report``: a self-contained HTML report, one or several packs side by side.
"""
