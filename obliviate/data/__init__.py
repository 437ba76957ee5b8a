"""Records, the fictitious-people generator, file loaders and tokenisation helpers."""
from obliviate.data.format import Example, collate, encode, examples_from, format_prompt, qa_example
from obliviate.data.loaders import BUILTIN_BENCHMARKS, benchmark_from_files, load_benchmark, load_qa_file, read_rows
from obliviate.data.people import ATTRIBUTES, PeopleConfig, generate_people
from obliviate.data.records import Benchmark, QARecord, TextRecord

__all__ = ["ATTRIBUTES", "BUILTIN_BENCHMARKS", "Benchmark", "Example", "PeopleConfig", "QARecord", "TextRecord",
           "benchmark_from_files", "collate", "encode", "examples_from", "format_prompt", "generate_people",
           "load_benchmark", "load_qa_file", "qa_example", "read_rows"]
