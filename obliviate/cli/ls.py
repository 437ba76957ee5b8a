"""``obliviate ls``: the registries (methods, metrics, models, benchmarks, probes, attacks), or one method's or
attack's options."""
from __future__ import annotations

LS_TABLES = ("methods", "metrics", "models", "benchmarks", "probes", "attacks")


def register(sub, p) -> None:
    ls = sub.add_parser("ls", parents=[p["common"]],
                        help=f"list a registry ({', '.join(LS_TABLES)}), or a method's or attack's options "
                             "(`obliviate ls npo`)")
    ls.add_argument("what", nargs="?", metavar="WHAT",
                    help=f"one of {', '.join(LS_TABLES)} (all of them if left out), or a method or attack name")
    ls.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.attacks import ATTACKS
    from obliviate.core.utils import ObliviateError
    from obliviate.data import BUILTIN_BENCHMARKS
    from obliviate.data.rwku import BUILTIN_PROBES
    from obliviate.evals import METRICS
    from obliviate.methods import METHODS
    from obliviate.models import BUILTIN_MODELS

    if args.what in METHODS or args.what in ATTACKS:
        return _options(args.what)
    probes = {k: f"{len(t.fill)} fill-in-the-blank, {len(t.qa)} QA probes; neighbours: {', '.join(t.neighbours)}"
              for k, t in BUILTIN_PROBES.items()}
    tables = {"methods": {k: m.summary for k, m in METHODS.items()}, "metrics": METRICS,
              "models": BUILTIN_MODELS, "benchmarks": BUILTIN_BENCHMARKS, "probes": probes,
              "attacks": {k: a.summary for k, a in ATTACKS.items()}}
    if args.what and args.what not in tables:
        raise ObliviateError(f"obliviate ls: unknown table {args.what!r}; expected one of {', '.join(LS_TABLES)}, "
                             "or a method or attack name for its options")
    for what in [args.what] if args.what else list(tables):
        print(f"{what}:")
        for k, v in tables[what].items():
            print(f"  {k:<28} {v}")
    return 0


def _options(name: str) -> int:
    """A method's or an attack's options: name, type, default, constraint and help, from their declarations."""
    from obliviate.attacks import ATTACKS
    from obliviate.core.options import describe
    from obliviate.methods import METHODS

    cls = METHODS[name].config if name in METHODS else ATTACKS[name].config
    kind = "method" if name in METHODS else "attack"
    print(f"{kind} {name}: options (--set {'KEY' if kind == 'method' else name + '.KEY'}=VALUE)")
    for row in describe(cls):
        default = "default for the model" if row["default"] is None else repr(row["default"])
        rule = f"; {row['constraint']}" if row["constraint"] else ""
        print(f"  {row['name']:<22} {row['type']:<6} {default:<24} {row['help']}{rule}")
    return 0
