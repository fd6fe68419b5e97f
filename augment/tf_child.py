"""TensorFlow work, run in a child process: ``python -m augment.tf_child TASK SPEC.json``.

``import gpt_2_simple`` switches off eager execution for the whole process,
and gpt-2-simple cannot hold two models in one session, so every TensorFlow
task runs here, one fresh graph per task, and the caller's process never
imports TensorFlow. A task reads its arguments from a JSON spec and writes a
JSON result to ``spec["result"]`` (``{"error": ...}`` on failure); arrays
travel as ``.npy`` files (never pickles).

The parent side is ``run_task``; everything above it in this file runs only
in the child.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from augment.errors import AugmentError, MissingDependencyError

log = logging.getLogger(__name__)

STEP_LINE = re.compile(r"^\[(\d+) \| [\d.]+\] loss=([\d.]+|nan|inf) avg=")
TF_INSTALL = "pip install 'augment[tf]'  (gpt-2-simple==0.8.1, tensorflow==2.21.0)"


# --------------------------------------------------------------------------- child side

def _tf() -> Any:
    import tensorflow as tf

    return tf


def _graph_session(seed: int | None) -> Any:
    """A session on a fresh graph, so each task holds exactly one model."""
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        if seed is not None:
            tf.compat.v1.set_random_seed(seed)
    return tf.compat.v1.Session(graph=graph)


def _load_hparams(model_dir: Path) -> Any:
    from gpt_2_simple.src import model

    hparams = model.default_hparams()
    hparams.override_from_dict(json.loads((model_dir / "hparams.json").read_text()))
    return hparams


def _build(hparams: Any, batch: int | None = None) -> tuple[Any, Any]:
    """gpt-2-simple's own graph: (token placeholder, logits tensor)."""
    from gpt_2_simple.src import model

    tf = _tf()
    context = tf.compat.v1.placeholder(tf.int32, [batch, None])
    return context, model.model(hparams=hparams, X=context)["logits"]


def _model_saver() -> Any:
    tf = _tf()
    variables = [v for v in tf.compat.v1.global_variables() if v.name.startswith("model/")]
    return tf.compat.v1.train.Saver(var_list=variables, max_to_keep=1)


def _write_checkpoint_file(directory: Path, name: str) -> None:
    text = f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n'
    (directory / "checkpoint").write_text(text)


def task_init(spec: dict[str, Any]) -> dict[str, Any]:
    """A randomly initialised gpt-2-simple model dir, made by gpt-2-simple's ``model.model()`` and a Saver."""
    import shutil

    from augment.models import gpt2_tokenizer_files

    dest = Path(spec["dest"])
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "hparams.json").write_text(json.dumps(spec["hparams"]))
    tokenizer = gpt2_tokenizer_files()
    shutil.copyfile(tokenizer / "vocab.json", dest / "encoder.json")
    shutil.copyfile(tokenizer / "merges.txt", dest / "vocab.bpe")
    sess = _graph_session(spec.get("seed"))
    with sess.graph.as_default(), sess:
        _build(_load_hparams(dest))
        sess.run(_tf().compat.v1.global_variables_initializer())
        _model_saver().save(sess, str(dest / "model.ckpt"), write_meta_graph=False, write_state=False)
    _write_checkpoint_file(dest, "model.ckpt")
    return {"dest": str(dest)}


def task_logits(spec: dict[str, Any]) -> dict[str, Any]:
    """Logits of gpt-2-simple's graph for the token ids in ``spec["ids"]`` (an int .npy)."""
    import numpy as np

    model_dir = Path(spec["model_dir"])
    ids = np.load(spec["ids"], allow_pickle=False).astype(np.int32)
    sess = _graph_session(None)
    with sess.graph.as_default(), sess:
        context, logits = _build(_load_hparams(model_dir))
        _model_saver().restore(sess, spec["checkpoint"])
        values = sess.run(logits, feed_dict={context: ids})
        if spec.get("resave_to"):
            _resave(sess, Path(spec["resave_to"]))
    np.save(spec["out"], values.astype(np.float32), allow_pickle=False)
    return {"shape": list(values.shape)}


def _resave(sess: Any, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    _model_saver().save(sess, str(dest / "model.ckpt"), write_meta_graph=False, write_state=False)
    _write_checkpoint_file(dest, "model.ckpt")


class _StepLog(io.TextIOBase):
    """Catches gpt-2-simple's printed ``[step | time] loss=...`` lines; echoes them when asked."""

    def __init__(self, echo: bool):
        self.losses: list[tuple[int, float]] = []
        self.echo = echo
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if match := STEP_LINE.match(line):
                self.losses.append((int(match[1]), float(match[2])))
            if self.echo or match is None:
                print(line, file=sys.stderr, flush=True)
        return len(text)


def _seed_everything(seed: int) -> None:
    """Only ever called in the child, which exists for this one run (gpt-2-simple samples with ``random``)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)


def task_finetune(spec: dict[str, Any]) -> dict[str, Any]:
    import gpt_2_simple as gpt2

    _seed_everything(spec["seed"])
    steps = _StepLog(spec.get("progress", False))
    sess = _graph_session(spec["seed"])
    with sess.graph.as_default(), sess, contextlib.redirect_stdout(steps):
        gpt2.finetune(sess, spec["dataset"], steps=spec["steps"], model_name=spec["model_name"],
                      model_dir=spec["model_dir"], batch_size=spec["batch_size"],
                      learning_rate=spec["learning_rate"], accumulate_gradients=spec["accumulate_gradients"],
                      restore_from=spec["restore_from"], run_name=spec["run_name"],
                      checkpoint_dir=spec["checkpoint_dir"], sample_every=10 ** 9, save_every=spec["save_every"],
                      print_every=1, max_checkpoints=spec["max_checkpoints"])
    return {"losses": steps.losses}


def task_download(spec: dict[str, Any]) -> dict[str, Any]:
    import gpt_2_simple as gpt2

    with contextlib.redirect_stdout(sys.stderr):
        gpt2.download_gpt2(model_dir=spec["model_dir"], model_name=spec["model_name"])
    return {"model_dir": str(Path(spec["model_dir"]) / spec["model_name"])}


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "init": task_init, "logits": task_logits, "finetune": task_finetune, "download": task_download}


def main(argv: list[str]) -> int:
    task, spec_path = argv
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = TASKS[task](spec)
    except BaseException as exc:  # reported to the parent, which raises AugmentError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result = {"error": f"{type(exc).__name__}: {first}"[:2000]}
        Path(spec["result"]).write_text(json.dumps(result))
        raise
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- parent side

def require_tf() -> None:
    """Fail early, in the parent, when the tf extra is missing."""
    for module in ("tensorflow", "gpt_2_simple"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(f"the gpt-2-simple back-end needs {module}: {TF_INSTALL}")


@contextlib.contextmanager
def _spec_file(spec: dict[str, Any]) -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory(prefix="augment-tf-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps({**spec, "result": str(result_path)}, default=str))
        yield spec_path, result_path


def run_task(task: str, spec: dict[str, Any], log_path: Path | None = None,
             timeout: float | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Run one task in a fresh Python with TensorFlow; its output goes to ``log_path`` (or stderr)."""
    require_tf()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
           "PYTHONUNBUFFERED": "1"}
    with _spec_file(spec) as (spec_path, result_path), \
            (open(log_path, "a", encoding="utf-8") if log_path else contextlib.nullcontext()) as log_fh:
        cmd = [sys.executable, "-m", "augment.tf_child", task, str(spec_path)]
        log.debug("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, env=env, stdout=log_fh or 2, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise AugmentError(f"gpt-2-simple {task}: timed out after {timeout} s") from None
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
    if proc.returncode or "error" in result:
        where = f"; see {log_path}" if log_path else ""
        error = result.get("error") or f"the TensorFlow process exited with status {proc.returncode}"
        raise AugmentError(f"gpt-2-simple {task} failed: {error}{where}")
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
