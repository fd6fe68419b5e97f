"""Speed benchmarks: python -m benchmarks.generation, python -m benchmarks.finetune."""
