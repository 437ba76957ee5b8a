"""The workflows, as functions a Python user calls the way the CLI does; each returns a :class:`RunResult` whose
``to_json()`` is the results.json it wrote.

- :func:`obliviate.runs.unlearn.unlearn_model`: one request, a new model folder and a ledger entry;
- :func:`obliviate.runs.evaluate.evaluate_model`: against the oracle, with MUSE / RWKU / lm-eval beside it
  (:func:`obliviate.runs.evaluate.extra_evaluations`);
- :func:`obliviate.runs.attack.attack_models`: attacks judged against the oracle under the same attacks;
- :func:`obliviate.runs.demo.run_demo`, :func:`obliviate.runs.curve.run_curve`, :func:`obliviate.runs.tune.tune_method`.
"""
from obliviate.runs.common import RunResult

__all__ = ["RunResult"]
