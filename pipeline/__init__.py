"""The DVC pipeline around detectron_ext: params.yaml -> detectron2 configs (config.py), what each run
trains and tests on (runs.py), training and evaluating a run (runner.py), logs, plots and reports.
detectron_ext imports nothing from here."""
