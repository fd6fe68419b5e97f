"""The generation stage, one way down: ``job`` (parts, filters, output, provenance) ->
``loop`` (slots, refill, rows per rank) -> ``sampler`` (one model step, fused sampling)."""

from augment.generate.context import check_job_fits, prompt_texts, train_texts
from augment.generate.job import GenerateResult, dropped_path, generate_to_file, output_format, parts_dir, write_table
from augment.generate.loop import collect_rows, decode_rows, resolve_batch_size
from augment.generate.sampler import COLUMNS, SAMPLER_VERSION, LabelGenerator, RunWeights, sampling_params

__all__ = ["COLUMNS", "SAMPLER_VERSION", "GenerateResult", "check_job_fits", "LabelGenerator", "collect_rows", "decode_rows",
           "dropped_path", "generate_to_file", "output_format", "parts_dir", "prompt_texts",
           "resolve_batch_size", "RunWeights", "sampling_params", "train_texts", "write_table"]
