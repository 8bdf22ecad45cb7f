"""Experiments that train models: resumable multi-seed sweeps, run and sweep
reports, and the demo. Sits above :mod:`mmrefine.training`; uses the pure
functions of :mod:`mmrefine.evaluation`."""
