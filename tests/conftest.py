"""Shared fixtures. Everything runs offline on the CPU with the `micro` model (2 layers) and benchmark."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an unknown hub id must fail at once, not retry for a minute
os.environ.setdefault("OBLIVIATE_QUIET", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# ledgers and certificates are signed: the tests sign with a key of their own, never the user's
os.environ.setdefault("OBLIVIATE_SIGNING_KEY", os.path.join(__import__("tempfile").mkdtemp(), "signing-key.pem"))

# the suite runs on pytest-xdist workers (pyproject's addopts): each worker gets its share of the cores, so that the
# workers' torch threads do not contend (two processes with every core's threads each run several times slower),
# and a cache of its own, so that no two workers write one cached model and no test writes the user's cache
# (the controller, which runs no test, must not set OMP_NUM_THREADS: its workers would inherit it)
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, _CORES // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
_CACHE = os.environ["OBLIVIATE_CACHE"] = __import__("tempfile").mkdtemp(prefix="obliviate-test-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402

if "PYTEST_XDIST_WORKER" in os.environ:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def _import_the_library() -> None:
    """Import every obliviate module before any test runs. A test that replaces a function (``monkeypatch``) would
    otherwise leave its stand-in for good in a module first imported during that test (``from x import f`` binds
    it), and which test comes first depends on how the workers share the files."""
    import importlib
    import pkgutil

    import obliviate

    for m in pkgutil.walk_packages(obliviate.__path__, "obliviate."):
        if not m.name.endswith(".__main__"):  # that one runs the CLI
            importlib.import_module(m.name)


_import_the_library()


def pytest_unconfigure(config):
    __import__("shutil").rmtree(_CACHE, ignore_errors=True)


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core, at most 4 (more would each train the session's micro pair again)."""
    return max(1, min(4, _CORES))


@pytest.fixture(scope="session")
def micro_bench():
    from obliviate import load_benchmark

    return load_benchmark("micro")


@pytest.fixture(scope="session")
def micro_pair(tmp_path_factory, micro_bench):
    """Target and oracle `micro` models trained on the micro benchmark (cached for the session)."""
    from obliviate import train_pair

    cache = tmp_path_factory.mktemp("cache")
    return train_pair("micro", micro_bench, cache=cache) | {"cache": cache}


@pytest.fixture(scope="session")
def micro_models(micro_pair):
    from obliviate import load_model

    target, tok = load_model(micro_pair["target"])
    oracle, _ = load_model(micro_pair["oracle"])
    return target, oracle, tok


@pytest.fixture(scope="session")
def micro_evals(micro_models, micro_bench):
    from obliviate import evaluate

    target, oracle, tok = micro_models
    o = evaluate(oracle, tok, micro_bench)
    t = evaluate(target, tok, micro_bench, oracle=o)
    return t, o


@pytest.fixture(scope="module")
def data(micro_models, micro_bench):
    """The micro unlearning request (forget, retain, holdout), built once per test module. micro has no calibration
    split (its tokenizer stays that of the tests' models), so the stopping rule's never-trained facts are its
    holdout here."""
    from obliviate import UnlearnData
    from obliviate.data import examples_from

    _, _, tok = micro_models
    d = UnlearnData.from_benchmark(micro_bench, tok)
    d.holdout = examples_from(tok, micro_bench.holdout)
    d.subjects["holdout"] = [r.subject for r in micro_bench.holdout]
    return d


@pytest.fixture(scope="session")
def answer_nll():
    """A function (model, tok, examples) -> the mean NLL per answer token over the examples, in one padded batch."""
    from obliviate.data import collate, encode
    from obliviate.data.format import pad_id
    from obliviate.methods.losses import mean_token_nll

    def nll(model, tok, examples):
        batch = collate([encode(tok, e) for e in examples], pad_id(tok))
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return mean_token_nll(logits, batch["labels"]).item()

    return nll
