"""The oracle is scored once per (weights, benchmark, evaluation config): a second `obliviate eval` against the
same oracle reads its scores from the cache and gives the same numbers; any change to those inputs scores again."""
import json
import shutil

import pytest

from obliviate.cli import main


def _count_oracle_scorings(monkeypatch) -> list:
    import obliviate.evals.cache as cache

    calls, real = [], cache.evaluate
    monkeypatch.setattr(cache, "evaluate", lambda *a, **k: calls.append(k.get("is_oracle")) or real(*a, **k))
    return calls


def test_a_second_evaluation_reads_the_oracle_scores_from_the_cache(tmp_path, monkeypatch, micro_pair):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    calls = _count_oracle_scorings(monkeypatch)
    t, o = str(micro_pair["target"]), str(micro_pair["oracle"])
    outs = []
    for i, model in enumerate((t, o)):  # two models evaluated against one oracle
        assert main(["eval", "--model", model, "--oracle", o, "--out", str(tmp_path / f"e{i}")]) == 0
        outs.append(json.loads((tmp_path / f"e{i}" / "results.json").read_text()))
    assert calls == [True]  # the oracle was scored by the first evaluation only
    assert [r["oracle_scores"] for r in outs] == ["scored", "read from the cache"]
    first, second = (r["models"]["oracle"] for r in outs)
    assert first["metrics"] == second["metrics"] and first["metrics_ci"] == second["metrics_ci"]
    assert len(list((tmp_path / "cache" / "scores").glob("*.json"))) == 1


def test_changed_weights_a_benchmark_or_config_give_another_key(tmp_path, micro_pair, micro_bench):
    from obliviate import load_benchmark
    from obliviate.evals import EvalConfig
    from obliviate.evals.cache import content_key

    o = tmp_path / "oracle"
    shutil.copytree(micro_pair["oracle"], o)
    key = content_key(o, micro_bench, EvalConfig())
    assert content_key(o, micro_bench, EvalConfig()) == key
    assert content_key(o, micro_bench, EvalConfig(seed=1)) != key
    assert content_key(o, load_benchmark("micro:forget05"), EvalConfig()) != key
    weights = next(o.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert content_key(o, micro_bench, EvalConfig()) != key


@pytest.mark.parametrize("damage", ["{not json", '{"metrics": 1}'])
def test_a_damaged_cache_entry_is_scored_again(tmp_path, monkeypatch, micro_pair, micro_models, micro_bench, damage):
    from obliviate.evals import EvalConfig
    from obliviate.evals.cache import content_key, evaluate_oracle

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))
    _, oracle, tok = micro_models
    cfg = EvalConfig(bootstrap=0)
    entry = tmp_path / "scores" / f"{content_key(micro_pair['oracle'], micro_bench, cfg)}.json"
    entry.parent.mkdir(parents=True)
    entry.write_text(damage)
    res, cached = evaluate_oracle(oracle, tok, micro_bench, cfg, micro_pair["oracle"])
    assert not cached and res.metrics["forget_exact_match"] is not None
    assert evaluate_oracle(oracle, tok, micro_bench, cfg, micro_pair["oracle"])[1]  # replaced by a good entry


def test_a_model_scored_against_the_oracle_is_cached_under_that_oracle_result(tmp_path, monkeypatch, micro_pair,
                                                                              micro_models, micro_bench):
    from obliviate.evals import EvalConfig
    from obliviate.evals.cache import evaluate_cached

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))
    calls = _count_oracle_scorings(monkeypatch)
    target, oracle, tok = micro_models
    cfg = EvalConfig(bootstrap=0)
    ref, cached = evaluate_cached(oracle, tok, micro_bench, cfg, micro_pair["oracle"])
    assert not cached
    first, cached = evaluate_cached(target, tok, micro_bench, cfg, micro_pair["target"], oracle=ref)
    assert not cached and first.metrics["forget_quality"] is not None  # scored against the oracle
    again, cached = evaluate_cached(target, tok, micro_bench, cfg, micro_pair["target"], oracle=ref)
    assert cached and again.metrics == first.metrics and again.arrays == first.arrays
    assert calls == [True, False]  # the oracle once, the target once
    other = type(ref)(**{**ref.to_dict(), "metrics": {**ref.metrics, "forget_exact_match": -1.0}})
    assert not evaluate_cached(target, tok, micro_bench, cfg, micro_pair["target"], oracle=other)[1]
    assert evaluate_cached(target, tok, micro_bench, cfg, None, oracle=ref)[1] is False  # no folder: not cached
