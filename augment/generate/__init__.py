"""The generation stage, one way down: ``job`` (a file, filters, provenance) -> ``rows`` (the one
function every caller uses) -> ``loop`` (slots, refill, rows per rank) -> ``generators`` (one
interface for every kind of run) -> ``sampler`` (one model step, fused sampling)."""

from augment.generate.generators import Generators, InstructGenerator, LabelGenerator
from augment.generate.job import GenerateResult, dropped_path, generate_to_file, output_format, write_table
from augment.generate.loop import collect_rows, decode_rows, resolve_batch_size
from augment.generate.parts import Parts, parts_dir
from augment.generate.rows import Generated, generate_rows
from augment.generate.sampler import COLUMNS, SAMPLER_VERSION, sampling_params

__all__ = ["COLUMNS", "SAMPLER_VERSION", "Generated", "GenerateResult", "Generators", "InstructGenerator",
           "LabelGenerator", "Parts", "collect_rows", "decode_rows", "dropped_path", "generate_rows",
           "generate_to_file", "output_format", "parts_dir", "resolve_batch_size", "sampling_params", "write_table"]
