"""Shared fixtures. Everything runs offline on the CPU with the `micro` model (2 layers) and benchmark."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an unknown hub id must fail at once, not retry for a minute
os.environ.setdefault("OBLIVIATE_QUIET", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# ledgers and certificates are signed: the tests sign with a key of their own, never the user's
os.environ.setdefault("OBLIVIATE_SIGNING_KEY", os.path.join(__import__("tempfile").mkdtemp(), "signing-key.pem"))

import pytest  # noqa: E402


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
