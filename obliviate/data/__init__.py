"""Records, the fictitious-people generator, file loaders and tokenisation helpers."""
from .format import Example, collate, encode, examples_from, format_prompt, qa_example
from .loaders import BUILTIN_BENCHMARKS, benchmark_from_files, load_benchmark, load_qa_file, read_rows
from .people import ATTRIBUTES, PeopleConfig, generate_people
from .records import Benchmark, QARecord, TextRecord

__all__ = ["ATTRIBUTES", "BUILTIN_BENCHMARKS", "Benchmark", "Example", "PeopleConfig", "QARecord", "TextRecord",
           "benchmark_from_files", "collate", "encode", "examples_from", "format_prompt", "generate_people",
           "load_benchmark", "load_qa_file", "qa_example", "read_rows"]
