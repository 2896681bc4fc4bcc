"""Small configurations for tests that train (seconds to a minute on 2 CPU cores)."""
import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def tiny_params(max_iter=40, checkpoint_period=10, num_train=8, num_test=4, lr=0.01, batch=4) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = copy.deepcopy(params)
    params["dataset"] = "synthetic"
    params["datasets"]["synthetic"].update(num_train=num_train, num_test=num_test)
    params["scale"] = "ci"
    params["scales"]["ci"].update(max_iter=max_iter, batch=batch, lr=lr, warmup_iters=10,
                                  step_fractions=[0.5, 0.75], eval_period=0)
    params["train"]["checkpoint_period"] = checkpoint_period
    params["device"] = "cpu"
    return params
