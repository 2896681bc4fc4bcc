"""The line engineer's commands, `defect-il predict | export | increment` (cli.py), on saved model folders:
no DVC, no params.yaml needed (increment reads one for its schedule and method: yours or the repository's).
Built on detectron_ext; from the pipeline it takes the params -> detectron2 config crossing alone."""
