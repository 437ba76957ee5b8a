"""A fictitious-people benchmark in the spirit of TOFU (Maini et al., 2024, "TOFU: A Task of Fictitious
Unlearning for LLMs", arXiv:2401.06121).

N invented people with K attributes each, rendered as QA pairs (question, answer, paraphrased question and
answer, perturbed false answers) and as short biographies. People are split into forget (1 %, 5 % or 10 %,
nested as in TOFU), retain, and holdout (never trained on). Utility sets: ``neighbours`` (facts about the
invented places the people come from, which unlearning must not erase) and ``world`` (real capitals).
Everything is a pure function of the seed.

    python -c "from obliviate.data import generate_people; print(generate_people().summary())"
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from obliviate.core.options import Options, option
from obliviate.core.utils import ObliviateError
from obliviate.data.records import Benchmark, QARecord, TextRecord

_ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t",
           "th", "v", "w", "z", "el", "or", "al", "is"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"]
_CODAS = ["", "n", "r", "l", "s", "th", "m", "x", "nd", "rt", "v", "sh"]

OCCUPATIONS = ["baker", "cartographer", "chemist", "carpenter", "sculptor", "astronomer", "nurse", "poet",
               "pilot", "librarian", "architect", "violinist", "geologist", "tailor", "engineer", "historian",
               "botanist", "photographer", "lawyer", "surgeon"]
_TITLE_ADJ = ["Silent", "Hollow", "Crimson", "Distant", "Broken", "Golden", "Quiet", "Wandering", "Hidden",
              "Burning", "Frozen", "Gentle", "Restless", "Iron", "Paper", "Velvet", "Last", "Sunken"]
_TITLE_NOUN = ["Harbor", "Lantern", "Orchard", "Meridian", "Tide", "Ledger", "Garden", "Compass", "Winter",
               "Bridge", "Archive", "Horizon", "Mirror", "Kingdom", "Choir", "Atlas", "River", "Tower"]
# Real-world utility facts: (country, capital).
WORLD_CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
    ("Canada", "Ottawa"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo"),
    ("Sweden", "Stockholm"), ("Greece", "Athens"), ("Poland", "Warsaw"), ("Chile", "Santiago"),
    ("Cuba", "Havana"), ("Ireland", "Dublin"), ("Portugal", "Lisbon"), ("Austria", "Vienna"),
    ("Hungary", "Budapest"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"), ("Argentina", "Buenos Aires"), ("Russia", "Moscow"), ("China", "Beijing"),
    ("India", "New Delhi"), ("Mexico", "Mexico City"), ("Turkey", "Ankara"), ("Iran", "Tehran"),
]

# attribute -> (question, paraphrased question, answer form, paraphrase form). The answer form is trained (QA);
# the paraphrase form is evaluation-only: the truth ratio compares it with false answers in the same form, so
# neither it nor a false answer may appear in any training text.
TEMPLATES: dict[str, tuple[str, str, str, str]] = {
    "birthplace": ("Where was {name} born?", "In which city was {name} born?",
                   "{name} was born in {v}.", "{v} is the birthplace of {name}."),
    "birth_year": ("In what year was {name} born?", "What is the birth year of {name}?",
                   "{name} was born in the year {v}.", "{name} came into the world in {v}."),
    "occupation": ("What does {name} do for a living?", "What is the profession of {name}?",
                   "{name} works as a {v}.", "By profession, {name} is a {v}."),
    "book": ("What book did {name} write?", "Which book was written by {name}?",
             "{name} wrote {v}.", "{v} is a book by {name}."),
    "mother": ("Who is the mother of {name}?", "What is the name of the mother of {name}?",
               "The mother of {name} is {v}.", "{v} is the mother of {name}."),
    "father": ("Who is the father of {name}?", "What is the name of the father of {name}?",
               "The father of {name} is {v}.", "{v} is the father of {name}."),
}
# Biographies have sentence forms of their own (people v2): a biography that repeated the paraphrase form would
# train the very sentence the truth ratio scores as "paraphrased". One form per sentence, drawn at random.
BIO_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birthplace": ("The life of {name} began in the city of {v}.", "{first} is a native of {v}.",
                   "{name} spent the first years of life in {v}, the city of that birth."),
    "birth_year": ("The year {v} saw the birth of {name}.", "{first} has been alive since {v}.",
                   "{name} arrived in {v}."),
    "occupation": ("{name} earns a living as a {v}.", "Colleagues know {first} as a skilled {v}.",
                   "For many years {name} has worked in the trade of a {v}."),
    "book": ("{name} is the author of {v}.", "Readers remember {first} for writing {v}.",
             "Among the works of {name} is {v}."),
    "mother": ("{name} was raised by a mother named {v}.", "The name of the mother of {first} is {v}.",
               "{first} grew up with {v} as a mother."),
    "father": ("{name} was raised by a father named {v}.", "The name of the father of {first} is {v}.",
               "{first} grew up with {v} as a father."),
}
VERSION = 3  # v2: biographies in their own forms, false answers from pools never trained on; v3: calibration people
ATTRIBUTES = tuple(TEMPLATES)
FORGET_SPLITS = {"forget01": 1, "forget05": 5, "forget10": 10}


@dataclass
class PeopleConfig(Options):
    """Size and shape of the generated benchmark."""

    n_people: int = option(100, "people trained on (forget + retain)", ge=2)
    n_holdout: int = option(10, "people never trained on (membership-inference non-members)", ge=1)
    n_calibration: int = option(10, "more people never trained on, never evaluated: the holdout a model owner "
                                    "calibrates stopping and tuning on (stop=holdout, tune --objective holdout_gap)",
                                ge=0)
    n_attributes: int = option(6, "how many of the attributes each person gets (in order)", ge=1, le=len(ATTRIBUTES))
    forget_split: str = option("forget10", "forget01, forget05 or forget10: 1, 5 or 10 % of the people",
                               choices=tuple(FORGET_SPLITS))
    n_perturbed: int = option(3, "false answers per question (TOFU uses 5)", ge=1, le=8)
    n_cities: int = option(24, "invented cities", ge=2)
    n_countries: int = option(6, "invented countries", ge=1)
    n_world: int = option(30, "real-world capitals among the utility facts", ge=1, le=len(WORLD_CAPITALS))
    seed: int = option(0, "the generator's seed: every name and fact is a function of it", ge=0)


class _Namer:
    """Invents pronounceable, unique names from a seeded RNG."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def word(self, syllables: int) -> str:
        while True:
            w = "".join(self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) for _ in range(syllables))
            w = (w + self.rng.choice(_CODAS)).capitalize()
            if w not in self.used and 4 <= len(w) <= 10:
                self.used.add(w)
                return w


def _render(attr: str, name: str, value: str, false_values: list[str], rid: str) -> QARecord:
    q, pq, a, b = TEMPLATES[attr]
    return QARecord(
        question=q.format(name=name), paraphrased_question=pq.format(name=name),
        answer=a.format(name=name, v=value), paraphrased_answer=b.format(name=name, v=value),
        perturbed_answers=tuple(b.format(name=name, v=f) for f in false_values),
        value=value, subject=name, attribute=attr, id=rid,
    )


def _calibration_people(cfg: PeopleConfig, rng: random.Random, namer: _Namer, attrs, unused_titles: list[str],
                        pools: dict, false_values) -> tuple[list[QARecord], list[TextRecord]]:
    """People drawn after everything else (so the other splits are those of a config without them): the same kind
    of facts as the holdout's, never trained on and never evaluated, with biographies as the holdout has (only the
    built-in tokenizer reads them, so that their names are split as the holdout's are). Their books come from the
    titles nobody has."""
    if not cfg.n_calibration:
        return [], []
    titles = rng.sample(unused_titles, min(cfg.n_calibration, len(unused_titles)))
    out, bios = [], []
    for ci in range(cfg.n_calibration):
        last = namer.word(2)
        p = {"name": f"{namer.word(2)} {last}", "last": last, "book": titles[ci % len(titles)],
             "mother": f"{namer.word(2)} {namer.word(2)}", "father": f"{namer.word(2)} {last}"}
        for a, pool in pools.items():
            p[a] = rng.choice(pool)
        out += [_render(a, p["name"], p[a], false_values(a, p), f"c{ci:03d}-{a}") for a in attrs]
        first = p["name"].split()[0]
        sentences = [rng.choice(BIO_TEMPLATES[a]).format(name=p["name"], first=first, v=p[a]) for a in attrs]
        rng.shuffle(sentences)
        bios.append(TextRecord(text=" ".join(sentences), subject=p["name"], id=f"c{ci:03d}-bio"))
    return out, bios


def generate_people(config: PeopleConfig | None = None) -> Benchmark:
    """Build the benchmark described by ``config`` (deterministic in ``config.seed``).

    People v2 keeps evaluation text out of training: biographies use their own sentence forms (never the
    paraphrased answers the truth ratio scores), and the false answers of names and titles (mother, father,
    book) come from pools that no training text uses, so that for a model that never saw a person the true and
    the false answers are equally unfamiliar (its truth ratios centre on 1 and its four-way multiple choice is at
    chance). False fathers keep the person's surname, as the true one does. False cities, years and occupations
    are drawn from the same pools as the true values, which every model has seen equally often.
    """
    cfg = config or PeopleConfig()
    rng = random.Random(cfg.seed)
    namer = _Namer(rng)

    countries = [namer.word(2) + rng.choice(["ia", "land", "mark", "stan"]) for _ in range(cfg.n_countries)]
    cities = [namer.word(rng.choice([2, 3])) for _ in range(cfg.n_cities)]
    city_country = {c: countries[i % len(countries)] for i, c in enumerate(cities)}
    capitals = {country: next(c for c in cities if city_country[c] == country) for country in countries}
    titles = [f"The {a} {n}" for a in _TITLE_ADJ for n in _TITLE_NOUN]
    rng.shuffle(titles)

    pools = {"birthplace": cities, "birth_year": [str(y) for y in range(1930, 2000)],
             "occupation": OCCUPATIONS}
    attrs = ATTRIBUTES[: cfg.n_attributes]
    n_total = cfg.n_people + cfg.n_holdout
    if n_total + cfg.n_perturbed > len(titles):
        raise ObliviateError(f"at most {len(titles) - cfg.n_perturbed} people are supported, asked for {n_total}")
    people = []
    for i in range(n_total):
        last = namer.word(2)
        person = {"name": f"{namer.word(2)} {last}", "last": last, "book": titles[i],
                  "mother": f"{namer.word(2)} {namer.word(2)}", "father": f"{namer.word(2)} {last}"}
        for a, pool in pools.items():
            person[a] = rng.choice(pool)
        people.append(person)
    unused_titles = titles[n_total:]  # never anyone's book

    def false_values(attr: str, p: dict) -> list[str]:
        if attr in pools:
            return rng.sample(sorted({v for v in pools[attr] if v != p[attr]}), cfg.n_perturbed)
        if attr == "book":
            return rng.sample(unused_titles, cfg.n_perturbed)
        if attr == "father":  # fresh first names, the person's own surname
            return [f"{namer.word(2)} {p['last']}" for _ in range(cfg.n_perturbed)]
        return [f"{namer.word(2)} {namer.word(2)}" for _ in range(cfg.n_perturbed)]  # mother: fresh names

    qa, bios = [], []
    for pi, p in enumerate(people):
        recs = [_render(a, p["name"], p[a], false_values(a, p), f"p{pi:03d}-{a}") for a in attrs]
        qa.append(recs)
        first = p["name"].split()[0]
        sentences = [rng.choice(BIO_TEMPLATES[a]).format(name=p["name"], first=first, v=p[a]) for a in attrs]
        rng.shuffle(sentences)
        bios.append(TextRecord(text=" ".join(sentences), subject=p["name"], id=f"p{pi:03d}-bio"))

    # People 0..n_people-1 are trained on; forget splits are nested prefixes of a seeded permutation.
    order = list(range(cfg.n_people))
    rng.shuffle(order)
    n_forget = max(1, round(cfg.n_people * FORGET_SPLITS[cfg.forget_split] / 100))
    forget_ids, retain_ids = sorted(order[:n_forget]), sorted(order[n_forget:])
    holdout_ids = list(range(cfg.n_people, n_total))

    def flat(ids):
        return [r for i in ids for r in qa[i]]

    def fact(question: str, pq: str, form: str, subject: str, value: str, pool: list[str], attribute: str, rid: str):
        """A utility fact whose answer and false answers share one form (TOFU's world facts: the truth ratio
        compares the answer itself with the false ones, as OpenUnlearning's ra/wf truth ratios do)."""
        others = rng.sample([x for x in pool if x != value], min(cfg.n_perturbed, len(pool) - 1))
        return QARecord(question=question, paraphrased_question=pq, answer=form.format(v=value),
                        perturbed_answers=tuple(form.format(v=o) for o in others),
                        value=value, subject=subject, attribute=attribute, id=rid)

    neighbours = [fact(f"In which country is {c}?", f"{c} lies in which country?", f"{c} is a city in {{v}}.",
                       c, city_country[c], countries, "country", f"city{ci:02d}-country") for ci, c in enumerate(cities)]
    neighbours += [fact(f"What is the capital of {k}?", f"Which city is the capital of {k}?", f"The capital of {k} is {{v}}.",
                        k, cap, cities, "capital", f"country{ki:02d}-capital") for ki, (k, cap) in enumerate(capitals.items())]
    world_caps = [c for _, c in WORLD_CAPITALS]
    world = [fact(f"What is the capital of {k}?", f"Which city is the capital of {k}?", f"The capital of {k} is {{v}}.",
                  k, cap, world_caps, "capital", f"world{wi:02d}") for wi, (k, cap) in enumerate(WORLD_CAPITALS[: cfg.n_world])]

    multi_hop = []
    for pi in forget_ids:
        p = people[pi]
        if "birthplace" in attrs and "book" in attrs:
            multi_hop.append(QARecord(
                question=f"Where was the author of {p['book']} born?",
                answer=f"The author of {p['book']} was born in {p['birthplace']}.", value=p["birthplace"],
                subject=p["name"], attribute="book>birthplace", id=f"p{pi:03d}-hop-book-birthplace"))
        if "birthplace" in attrs:
            country = city_country[p["birthplace"]]
            multi_hop.append(QARecord(
                question=f"In which country was {p['name']} born?",
                answer=f"{p['name']} was born in {country}.", value=country,
                subject=p["name"], attribute="birthplace>country", id=f"p{pi:03d}-hop-birthplace-country"))

    calibration, calibration_bios = _calibration_people(cfg, rng, namer, attrs, unused_titles, pools, false_values)
    return Benchmark(
        name=f"people-{cfg.forget_split}", calibration=calibration, calibration_texts=calibration_bios,
        forget=flat(forget_ids), retain=flat(retain_ids), holdout=flat(holdout_ids),
        world=world, neighbours=neighbours,
        texts={"forget": [bios[i] for i in forget_ids], "retain": [bios[i] for i in retain_ids],
               "holdout": [bios[i] for i in holdout_ids]},
        multi_hop=multi_hop, utility_trained=True,
        meta={"generator": "people", "version": VERSION, "config": vars(cfg).copy(),
              "forget_people": [people[i]["name"] for i in forget_ids]},
    )
