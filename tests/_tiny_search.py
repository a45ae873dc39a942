"""A tiny keras-tuner search for tests/test_distributed_tuning.py, run through `kerasmt tune _tiny_search:search`.

Random search over 6 choices of units of a 4-input regression net (2 epochs on 64 seeded rows).
Each worker first waits (up to 90 s) until TINY_WORKERS workers are up, so that every worker gets
trials, and appends "<tuner id> <trial id>" to DIRECTORY/runs.txt for every trial it starts.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def search(request: Any) -> Any:
    """Run the tiny search for ``request`` (a kerasmt.distributed_tuning.TuneRequest); return the tuner."""
    import keras
    import keras_tuner as kt
    import numpy as np

    from kerasmt import tuning

    runs = Path(request.directory) / "runs.txt"
    if request.role == "worker":  # barrier: every worker connects before any trial starts
        Path(request.directory, f"ready_{request.tuner_id}").touch()
        deadline = time.time() + 90
        while len(list(Path(request.directory).glob("ready_*"))) < int(os.environ.get("TINY_WORKERS", "1")):
            if time.time() > deadline:
                raise TimeoutError("the other workers did not start")
            time.sleep(0.2)

    class Tiny(kt.HyperModel):
        def build(self, hp):
            units = hp.Choice("units", [2, 4, 8, 16, 32, 64])
            keras.utils.set_random_seed(request.seed)
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                                      keras.layers.Dense(1)])
            model.compile("adam", "mse")
            return model

        def fit(self, hp, model, *args, **kwargs):
            time.sleep(1.0)  # make every trial last long enough for both workers to get one
            return model.fit(*args, **kwargs)

    class LoggingSearch(tuning.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            with open(runs, "a") as f:
                f.write(f"{self.tuner_id} {trial.trial_id}\n")
            return super().run_trial(trial, *args, **kwargs)

    rng = np.random.default_rng(request.seed)
    x = rng.random((64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    tuner = LoggingSearch(hypermodel=Tiny(), objective="loss", max_trials=request.max_trials, seed=request.seed,
                          directory=str(request.directory), project_name=request.project_name, overwrite=False)
    tuner.search(x, y, epochs=2, batch_size=16, verbose=0)
    return tuner
