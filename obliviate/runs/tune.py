"""Hyperparameter search for an unlearning method, with Optuna (Akiba et al., KDD 2019).

    obliviate tune --method npo --trials 20 --model tiny --out tune_npo

Each method declares its search space beside its config (``SEARCH``, a class attribute: option -> range); options
fixed with ``--set`` are left out of the search. A trial unlearns the target with the sampled options and scores it:

- ``forget_quality`` (research use, needs the oracle): maximise forget quality (TOFU's KS p-value against the
  oracle) subject to model utility ≥ c × the target's (``utility_ratio``, default 0.95);
- ``holdout_gap`` (no oracle): minimise max |AUC - 0.5| of the LOSS and Min-K% attacks between forget facts and
  never-trained calibration facts (:mod:`obliviate.methods.calibrate`), subject to retain token accuracy
  (teacher-forced) ≥ c × the target's.

With ``retain_eval_size`` N, each trial's utility and the target's reference are scored on one seeded sample of N
retain facts (the retain split is most of an evaluation's cost; every trial and the reference see the same facts, so
their ratio stays a paired comparison); forget quality is unchanged. Score the chosen configuration in full after.

The sampler is TPE (Bergstra et al., 2011) with a constraint (Optuna's ``constraints_func``: feasible when
``c × target - value ≤ 0``), over two objectives (the forget objective and the utility ratio), so the study also
yields the Pareto front. The study lives in SQLite: a run that is killed resumes where it stopped when the same
command is run again (its unfinished trial is run again with the same options). Each trial's sampler is seeded by
``seed`` and the number of trials completed before it, so a resumed study asks for the same options as an
uninterrupted one.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError, cache_dir, stable_hash

OBJECTIVES = ("forget_quality", "holdout_gap")


@dataclass
class TuneConfig(Options):
    trials: int = option(20, "completed trials the study should hold (a resumed study runs only the missing ones)",
                         ge=1)
    objective: str = option("forget_quality", "forget_quality (needs the oracle) or holdout_gap (no oracle)",
                            choices=OBJECTIVES)
    utility_ratio: float = option(0.95, "c: a trial is feasible when its utility (forget_quality) or retain token "
                                        "accuracy (holdout_gap) is at least c x the target's", gt=0, le=1)
    startup_trials: int = option(5, "trials sampled at random before TPE models the results (Optuna: 10)", ge=1)
    seed: int = option(0, "seeds the sampler and every trial's unlearning", ge=0)
    retain_eval_size: int = option(0, "forget_quality: a trial's utility (and the target's reference) is scored on "
                                      "one seeded sample of N retain facts, the same for all (0: every retain fact)",
                                   ge=0)


def search_space(method: str, fixed: dict) -> dict:
    """The method's declared ``SEARCH`` space minus the options fixed by the user."""
    from obliviate.methods import get_method

    cfg = get_method(method).config
    space = {k: v for k, v in getattr(cfg, "SEARCH", {}).items() if k not in fixed}
    if "max_steps" in fixed:  # a fixed step count overrides epochs
        space.pop("epochs", None)
    names = {f.name for f in fields(cfg)}
    unknown = set(space) - names
    if unknown:  # a declaration error, not a user error
        raise AssertionError(f"{method}: SEARCH names unknown options {sorted(unknown)}")
    if not space:
        raise ObliviateError(f"tune: method {method} has nothing to search (no SEARCH space, or every option in it "
                             "is fixed with --set)")
    return space


def suggest(trial, space: dict, base_lr: float) -> dict:
    """One point of ``space``: ``("lr", lo, hi)`` is log-uniform in [lo, hi] x the method's default learning rate;
    ``("log"|"float", lo, hi)``, ``("int", lo, hi)`` and ``("cat", choices)`` are what they say."""
    out = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "lr":
            out[name] = trial.suggest_float(name, spec[1] * base_lr, spec[2] * base_lr, log=True)
        elif kind in ("log", "float"):
            out[name] = trial.suggest_float(name, spec[1], spec[2], log=kind == "log")
        elif kind == "int":
            out[name] = trial.suggest_int(name, spec[1], spec[2])
        elif kind == "cat":
            out[name] = trial.suggest_categorical(name, list(spec[1]))
        else:
            raise AssertionError(f"unknown search kind {kind!r} for {name}")
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points, both coordinates to maximise (ties kept)."""
    front = []
    for i, (a, b) in enumerate(points):
        if not any((c >= a and d >= b) and (c > a or d > b) for j, (c, d) in enumerate(points) if j != i):
            front.append(i)
    return front


def study_path(method: str, cfg: TuneConfig, key: dict) -> Path:
    """Where the study lives by default: in the cache, named by everything that defines it (not the trial count,
    so that asking for more trials continues the same study)."""
    return cache_dir() / "tune" / f"{method}-{cfg.objective}-{stable_hash(key)[:16]}.db"


class Tuner:
    """Runs the study for one method on one target (and oracle) and benchmark."""

    def __init__(self, method: str, target, tokenizer, bench, cfg: TuneConfig, fixed: dict | None = None,
                 oracle_result=None, study: str | Path | None = None, key: dict | None = None,
                 reference: dict | None = None):
        from obliviate.methods import method_config
        from obliviate.methods.common import UnlearnData, default_lr

        self.method, self.target, self.tok, self.bench, self.cfg = method, target, tokenizer, bench, cfg
        self.fixed = dict(fixed or {})
        method_config(method, {**self.fixed})  # bad fixed options fail first
        self.space = search_space(method, self.fixed)
        self.data = UnlearnData.from_benchmark(bench, tokenizer)
        if cfg.retain_eval_size and cfg.objective != "forget_quality":
            raise ObliviateError("tune: retain_eval_size samples the retain facts of --objective forget_quality's "
                                 "utility; holdout_gap scores retain token accuracy on the request's retain set")
        if cfg.objective == "forget_quality" and oracle_result is None:
            raise ObliviateError("tune --objective forget_quality needs the oracle (--oracle, or a built-in --model "
                                 "whose oracle obliviate trains); --objective holdout_gap needs none")
        if cfg.objective == "holdout_gap" and not self.data.holdout:
            raise ObliviateError("tune --objective holdout_gap needs calibration facts the model never saw "
                                 "(--calibration FILE, or a benchmark with a calibration split)")
        self.oracle_result = oracle_result
        from obliviate.evals import EvalConfig

        # forget quality reads only the forget side, so a retain sample changes utility alone
        self.eval_cfg = EvalConfig(retain_eval_size=cfg.retain_eval_size)
        if reference is not None and cfg.retain_eval_size:
            raise ObliviateError("tune: a reference utility scored on every retain fact cannot judge trials scored on "
                                 "a sample (retain_eval_size); leave the reference out")
        self.base_lr = default_lr(target, method_config(method, {}))
        self.key = {"method": method, "objective": cfg.objective, "utility_ratio": cfg.utility_ratio,
                    "seed": cfg.seed, "startup": cfg.startup_trials, "fixed": self.fixed,
                    **({"retain_eval_size": cfg.retain_eval_size} if cfg.retain_eval_size else {}),
                    "space": {k: list(v) if not isinstance(v[1], tuple) else [v[0], list(v[1])]
                              for k, v in self.space.items()}, **(key or {})}
        self.path = Path(study) if study else study_path(method, cfg, self.key)
        self.reference = reference or self._reference()

    def _reference(self) -> dict:
        """The target's own score on the constraint's measure (utility, or retain token accuracy)."""
        if self.cfg.objective == "forget_quality":
            from obliviate.evals import evaluate

            r = evaluate(self.target, self.tok, self.bench, self.eval_cfg, oracle=self.oracle_result,
                         desc="evaluate target")
            return {"utility": r.metrics["model_utility"], "forget_quality": r.metrics.get("forget_quality")}
        from obliviate.methods.calibrate import retain_token_accuracy

        return {"utility": retain_token_accuracy(self.target, self.tok, self.data, who="tune --objective holdout_gap")}

    def _sampler(self, position: int):
        import warnings

        import optuna

        def constraints(ft):
            return ft.user_attrs.get("constraint", [1.0])

        with warnings.catch_warnings():  # Optuna 5 deprecates constraints_func for Trial.set_constraint; it still
            warnings.simplefilter("ignore", FutureWarning)  # works, and Optuna 4 (supported) has no replacement
            return optuna.samplers.TPESampler(seed=self.cfg.seed * 100003 + position,
                                              n_startup_trials=self.cfg.startup_trials, constraints_func=constraints,
                                              multivariate=True)

    def open(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(storage=f"sqlite:///{self.path}", study_name="obliviate",
                                    load_if_exists=True, directions=["maximize", "maximize"])
        recorded = study.user_attrs.get("key")
        if recorded is None:
            study.set_user_attr("key", stable_hash(self.key))
        elif recorded != stable_hash(self.key):
            raise ObliviateError(f"tune: the study {self.path} was made for another method, target, objective or "
                                 "search space; give another --study path")
        return study

    def run(self, progress=None) -> dict:
        from optuna.trial import TrialState

        study = self.open()
        resumed = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            if t.state == TrialState.RUNNING:  # left behind by a killed run: run its options again
                study.tell(t.number, state=TrialState.FAIL)
                study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
                resumed.append(t.number)
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        while done < self.cfg.trials:
            # seeded by what the study has learnt (completed trials, and trials that failed on their options), not
            # by trial numbers, which a killed and re-run trial shifts: a resumed study samples as an unbroken one
            failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            errors = sum(1 for t in failed if "error" in t.user_attrs)
            study.sampler = self._sampler(done * 1009 + errors)
            trial = study.ask()
            params = suggest(trial, self.space, self.base_lr)
            try:
                scores = self.score(params)
            except ObliviateError as e:  # e.g. a learning rate that diverges: a failed trial, not a failed tune
                trial.set_user_attr("error", str(e))
                trial.set_user_attr("constraint", [1.0])
                study.tell(trial, state=TrialState.FAIL)
                done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
                if len(study.trials) > 3 * self.cfg.trials:
                    raise ObliviateError(f"tune: too many failed trials ({e})") from e
                continue
            for k, v in scores.items():
                trial.set_user_attr(k, v)
            study.tell(trial, [scores["objective"], scores["ratio"]])
            done += 1
            if progress is not None:
                progress(done, self.cfg.trials, scores)
        return self.summary(study, resumed)

    def score(self, params: dict) -> dict:
        from obliviate.methods import unlearn

        t = time.time()
        new, info = unlearn(self.target, self.tok, self.data, self.method,
                            {"seed": self.cfg.seed, **self.fixed, **params})
        seconds = time.time() - t
        out = {"seconds": seconds, "steps": len(info["loss_curve"])}
        if "stop" in info:
            out["stop_step"] = info["stop"]["chosen_step"]
        if self.cfg.objective == "forget_quality":
            from obliviate.evals import evaluate

            r = evaluate(new, self.tok, self.bench, self.eval_cfg, oracle=self.oracle_result, desc="evaluate trial")
            fq, util = r.metrics.get("forget_quality"), r.metrics["model_utility"]
            out |= {"forget_quality": fq, "model_utility": util, "privleak": r.metrics.get("privleak"),
                    "forget_exact_match": r.metrics.get("forget_exact_match"),
                    "retain_exact_match": r.metrics.get("retain_exact_match"),
                    "objective": fq if fq is not None else 0.0}
        else:
            from obliviate.methods.calibrate import HoldoutStop, holdout_gap, retain_token_accuracy
            from obliviate.methods.common import GradientConfig

            probe = HoldoutStop(self.tok, self.data, GradientConfig(stop="holdout", seed=self.cfg.seed), 1)
            probe.probe(0, new)
            row = probe.curve[0]
            util = retain_token_accuracy(new, self.tok, self.data, who="tune --objective holdout_gap")
            out |= {"holdout_gap": holdout_gap(row), "loss_auc": row["loss_auc"], "min_k_auc": row["min_k_auc"],
                    "retain_token_accuracy": util, "objective": -holdout_gap(row)}
        ratio = util / self.reference["utility"] if self.reference["utility"] else 0.0
        out |= {"ratio": ratio, "constraint": [self.cfg.utility_ratio - ratio],
                "feasible": ratio >= self.cfg.utility_ratio}
        del new
        return out

    def summary(self, study, resumed: list[int]) -> dict:
        from optuna.trial import TrialState

        rows = []
        for t in study.get_trials(deepcopy=False):
            if t.state != TrialState.COMPLETE:
                continue
            a = t.user_attrs
            rows.append({"number": t.number, "params": dict(t.params), **{k: v for k, v in a.items()
                                                                          if k != "constraint"}})
        if not rows:
            raise ObliviateError("tune: no trial completed")
        front = [rows[i]["number"] for i in pareto_front([(r["objective"], r["ratio"]) for r in rows])]
        feasible = [r for r in rows if r["feasible"]]
        best = max(feasible or rows, key=lambda r: (r["objective"], r["ratio"]))
        config = {**self.fixed, **best["params"]}
        return {"method": self.method, "config": asdict(self.cfg), "study": str(self.path),
                "search_space": {k: list(v) for k, v in self.space.items()}, "fixed": self.fixed,
                "reference": self.reference, "trials": rows, "pareto_front": front,
                "best": {"number": best["number"], "feasible": best["feasible"], "config": config,
                         "set": [f"--set {k}={_fmt(v)}" for k, v in config.items()]},
                "failed_trials": [{"number": t.number, "error": t.user_attrs.get("error", "killed")}
                                  for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))],
                "resumed_trials": resumed}


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)




def plot_front(summary: dict) -> str:
    """The trials and the Pareto front as an embedded PNG (base64)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from obliviate.report.html import _png

    rows = summary["trials"]
    obj = summary["config"]["objective"]
    ylab = "forget quality (log)" if obj == "forget_quality" else "-(max |AUC - 0.5|), forget vs calibration"
    fig, ax = plt.subplots(figsize=(6, 4))
    front = set(summary["pareto_front"])
    ys = [max(r["objective"], 1e-30) if obj == "forget_quality" else r["objective"] for r in rows]
    ax.scatter([r["ratio"] for r in rows], ys, c=["#c33" if r["number"] in front else "#999" for r in rows], s=18)
    pts = sorted((r["ratio"], y) for r, y in zip(rows, ys) if r["number"] in front)
    if pts:
        ax.plot(*zip(*pts), color="#c33", lw=1, label="Pareto front")
    ax.axvline(summary["config"]["utility_ratio"], color="#36c", ls="--", lw=1, label="constraint c")
    if obj == "forget_quality":
        ax.set_yscale("log")
        ax.axhline(0.5, color="#3a3", ls=":", lw=1, label="forget quality 0.5")
    ax.set_xlabel("utility / target's" if obj == "forget_quality" else "retain token accuracy / target's")
    ax.set_ylabel(ylab)
    ax.set_title(f"tune {summary['method']}: {len(rows)} trials")
    ax.legend(fontsize=8)
    return _png(fig)


def render(summary: dict) -> str:
    """A self-contained HTML page: the plot, the Pareto front and every trial, and the best config."""
    import html as h

    obj = summary["config"]["objective"]
    cols = (["forget_quality", "model_utility", "privleak", "forget_exact_match", "retain_exact_match"]
            if obj == "forget_quality" else ["holdout_gap", "loss_auc", "min_k_auc", "retain_token_accuracy"])
    front = set(summary["pareto_front"])

    def num(v):
        return "n/a" if v is None else (f"{v:.3g}" if isinstance(v, float) and not math.isnan(v) else h.escape(str(v)))

    head = "".join(f"<th>{c}</th>" for c in ["trial", "front", "feasible", *cols, "ratio", "seconds", "options"])
    body = "".join(
        "<tr>" + "".join(f"<td>{x}</td>" for x in [r["number"], "●" if r["number"] in front else "",
                                                   "yes" if r["feasible"] else "no", *[num(r.get(c)) for c in cols],
                                                   num(r["ratio"]), num(r["seconds"]),
                                                   h.escape(", ".join(f"{k}={_fmt(v)}" for k, v in r["params"].items()))])
        + "</tr>" for r in sorted(summary["trials"], key=lambda r: -r["objective"]))
    best = summary["best"]
    verdict = ("" if best["feasible"] else "<p><b>No trial met the constraint</b>; the best objective is shown.</p>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>obliviate tune {h.escape(summary['method'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd;
font-size:13px}}</style></head><body><h1>obliviate tune: {h.escape(summary['method'])}</h1>
<p>objective <b>{obj}</b>, constraint: ratio ≥ {summary['config']['utility_ratio']} (target's reference
{num(summary['reference']['utility'])}); {len(summary['trials'])} completed trials; study {h.escape(summary['study'])}</p>
<img src="{plot_front(summary)}">{verdict}
<h2>Best configuration (trial {best['number']})</h2><pre>{h.escape(' '.join(best['set']))}</pre>
<h2>Trials (● Pareto front)</h2><table><tr>{head}</tr>{body}</table></body></html>"""


__all__ = ["OBJECTIVES", "TuneConfig", "Tuner", "pareto_front", "render", "search_space"]


def builtin_pair(model: str, oracle) -> bool:
    """Whether tune trains the target and oracle itself (a built-in model name and no oracle given)."""
    from obliviate.models import BUILTIN_MODELS

    return oracle is None and model in BUILTIN_MODELS


def check_objective(cfg: TuneConfig, model: str, oracle) -> None:
    """``forget_quality`` needs an oracle: given, or trained for a built-in model (checked before any loading)."""
    if cfg.objective == "forget_quality" and oracle is None and not builtin_pair(model, oracle):
        raise ObliviateError("tune --objective forget_quality needs the oracle (--oracle, or a built-in --model whose "
                             "oracle obliviate trains); --objective holdout_gap needs none")


def tune_method(method: str, model: str, out, bench, *, oracle=None, cfg: TuneConfig | None = None,
                fixed: dict | None = None, study=None, cache=None, overwrite: bool = False, inputs: list | None = None,
                progress=None):
    """Run (or resume) the study of ``method`` on ``model`` (a target folder, or a built-in name whose target and
    oracle are trained and cached) and write results.json (the trials, the Pareto front, the best configuration)
    and report.html to ``out``. ``progress(done, total, scores)`` is called after each trial."""
    from obliviate.core.outputs import atomic_dir, check_output, resolve
    from obliviate.core.utils import to_jsonable, write_json_atomic
    from obliviate.models import load_model
    from obliviate.report import results as build_results
    from obliviate.runs.common import RunResult

    cfg = cfg or TuneConfig()
    fixed = dict(fixed or {})
    builtin = builtin_pair(model, oracle)
    check_objective(cfg, model, oracle)
    inputs = list(inputs or [])
    if study:
        inputs = [*inputs, ("study", str(resolve(study)))]
    check_output(out, overwrite=overwrite, inputs=inputs)
    if builtin:
        from obliviate.engine.training import train_pair

        paths = train_pair(model, bench, cache=cache)
        target_path, oracle_path = paths["target"], paths["oracle"]
    else:
        target_path, oracle_path = model, oracle
    target, tok = load_model(target_path)
    oracle_result = None
    if cfg.objective == "forget_quality" and oracle_path is not None:
        from obliviate.evals import EvalConfig
        from obliviate.evals.cache import evaluate_oracle

        om, _ = load_model(oracle_path)
        oracle_result, _ = evaluate_oracle(om, tok, bench, EvalConfig(), oracle_path)
        del om
    key = {"target": str(resolve(target_path)) if not builtin else f"builtin:{model}",
           "benchmark": bench.fingerprint(), "calibration": len(bench.calibration)}
    tuner = Tuner(method, target, tok, bench, cfg, fixed, oracle_result, study=study, key=key)
    print(f"obliviate: tune {method}: study {tuner.path}", file=sys.stderr, flush=True)
    summary = tuner.run(progress)
    results = build_results("tune", seed=cfg.seed, config={"method": method, "fixed": fixed, **summary["config"]},
                            benchmark=bench.summary(), target=str(target_path), oracle=str(oracle_path), tune=summary)
    with atomic_dir(out, overwrite=overwrite, inputs=inputs) as tmp:
        write_json_atomic(Path(tmp) / "results.json", to_jsonable(results))
        (Path(tmp) / "report.html").write_text(render(summary), encoding="utf-8")
    return RunResult(results, Path(out))
