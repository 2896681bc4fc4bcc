"""The line engineer's commands, `defect-il predict | export | increment` (cli.py), on saved model folders,
without DVC. Built on detectron_ext; from the pipeline they take only params.yaml's reading and its crossing into
a detectron2 config (increment's schedule and method parameters: ./params.yaml, else the repository's)."""
