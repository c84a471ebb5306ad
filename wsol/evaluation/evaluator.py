"""The evaluator contract, after detectron2's ``DatasetEvaluator`` and torchmetrics' ``add_state``
(docs/architecture.md, "Evaluation").

An evaluator is fed by the inference loop: :meth:`DatasetEvaluator.reset` empties it,
:meth:`~DatasetEvaluator.process` takes each finished batch (a :class:`~wsol.evaluation.records.ScoredBatch`),
:meth:`~DatasetEvaluator.evaluate` gives its summary.csv columns, and :meth:`~DatasetEvaluator.per_image`
/ :meth:`~DatasetEvaluator.curves` its per_image.csv columns and curves.csv rows. An evaluator
that needs the model's inputs (faithfulness: perturbed forward passes) also implements
:meth:`~DatasetEvaluator.process_forward`, called right after the batch's forward pass.

State is declared once, in the constructor: :meth:`~DatasetEvaluator.add_state` for a value the
evaluator keeps itself, :meth:`~DatasetEvaluator.add_metric` for a :mod:`wsol.metrics` object
whose ``STATE`` declares its own (kept in its ``state`` dict). ``reset``, ``state_dict``,
``load_state_dict`` and ``merge`` follow from the declarations; per-image states (declared with
``per_image=True``) are put in dataset order by the evaluator's ``index`` state when loaded.

:class:`DatasetEvaluators` runs several evaluators as one: the same batches to each, their
summaries and per-image columns merged, a column given by two of them refused.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import pandas as pd

from wsol.errors import WsolError
from wsol.metrics.state import StateSpec, merge_states

#: per_image.csv columns that stay last whichever evaluator gives them
TAIL_COLUMNS = ("status", "reason")


class DatasetEvaluator:
    """Base of every evaluator: declared state plus the reset/process/evaluate contract."""

    #: the evaluator's name in a composite (and in its error messages and state keys)
    name = "evaluator"
    #: whether :meth:`process_forward` does anything (the loop skips the call and its timer stage otherwise)
    uses_forward = False
    #: whether :meth:`process` reads the normalized maps (the localizer then keeps them)
    uses_maps = False

    def __init__(self) -> None:
        self._specs: List[StateSpec] = []
        self._defaults: Dict[str, Any] = {}
        self._per_image: List[str] = []
        self._metrics: List[Tuple[str, Any]] = []  # (prefix, metric object with STATE and state)

    # ------------------------------------------------------------ declarations
    def add_state(self, name: str, default: Any, reduce: str, doc: str = "", per_image: bool = False) -> None:
        """Declare a state kept as attribute ``name``: its initial value (copied at each reset),
        its reduction across shards (``wsol.metrics.state``) and whether it holds one entry per
        image (put in dataset order on load)."""
        self._declare(StateSpec(name, reduce, doc))
        self._defaults[name] = default
        if per_image:
            if reduce != "cat":
                raise ValueError(f"state {name}: a per-image state concatenates (reduce 'cat')")
            self._per_image.append(name)
        setattr(self, name, copy.deepcopy(default))

    def add_metric(self, metric: Any, prefix: str = "") -> Any:
        """Declare the state of a ``wsol.metrics`` object (its ``STATE``, kept in its ``state``
        dict) under ``prefix`` + each name; returns the object."""
        for spec in metric.STATE:
            self._declare(StateSpec(prefix + spec.name, spec.reduce, spec.doc))
        self._metrics.append((prefix, metric))
        return metric

    def _declare(self, spec: StateSpec) -> None:
        if any(s.name == spec.name for s in self._specs):
            raise ValueError(f"{self.name}: state {spec.name!r} declared twice")
        self._specs.append(spec)

    # ------------------------------------------------------------ derived from the declarations
    def state_specs(self) -> Tuple[StateSpec, ...]:
        """Every declared state with its reduction."""
        return tuple(self._specs)

    def reset(self) -> None:
        """Every state back to its declared default."""
        for name, default in self._defaults.items():
            setattr(self, name, copy.deepcopy(default))
        for _, metric in self._metrics:
            metric.reset()

    def state_dict(self) -> Dict[str, Any]:
        """The whole state, keyed as :meth:`state_specs`."""
        out = {name: getattr(self, name) for name in self._defaults}
        for prefix, metric in self._metrics:
            out.update({prefix + s.name: metric.state[s.name] for s in metric.STATE})
        return out

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Replace the state (e.g. by the merge of the shards' states); per-image states are put
        in dataset order (stable, by the ``index`` state)."""
        order = None
        if self._per_image and "index" in self._per_image:
            index = state["index"]
            order = sorted(range(len(index)), key=lambda k: index[k])
        for name in self._defaults:
            value = state[name]
            if name in self._per_image and order is not None:
                value = [value[k] for k in order]
            setattr(self, name, value)
        for prefix, metric in self._metrics:
            metric.state = {s.name: state[prefix + s.name] for s in metric.STATE}

    def merge(self, *states: Dict[str, Any]) -> None:
        """Merge other evaluators' states into this one by the declared reductions."""
        self.load_state_dict(merge_states(self.state_specs(), [self.state_dict(), *states]))

    # ------------------------------------------------------------ the contract
    def process_forward(self, batch) -> None:
        """A batch right after its forward pass (:class:`~wsol.evaluation.records.ForwardBatch`);
        nothing by default."""

    def process(self, batch) -> None:
        """A finished batch (:class:`~wsol.evaluation.records.ScoredBatch`)."""
        raise NotImplementedError

    def evaluate(self) -> Dict[str, Any]:
        """summary.csv columns."""
        raise NotImplementedError

    def per_image(self) -> Optional[pd.DataFrame]:
        """per_image.csv columns, indexed by dataset position; None when it has none."""
        return None

    def curves(self) -> Optional[pd.DataFrame]:
        """curves.csv rows; None when it has none."""
        return None


def _refuse_duplicates(kind: str, owners: Dict[str, str], name: str, columns: Iterable[str]) -> None:
    """Record ``name`` as the owner of ``columns``; a column already owned is a one-line error."""
    for c in columns:
        if c in owners:
            raise WsolError(f"{kind} column {c!r} is given by two evaluators: {owners[c]!r} and {name!r}")
        owners[c] = name


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators as one: each batch to every evaluator (in order), their summaries
    and per-image columns merged (a column given twice is refused with its two evaluators
    named), their curve rows concatenated. ``blanks``: summary columns of evaluators the run
    does not have (NaN), so every run's summary.csv has the same columns."""

    name = "evaluators"

    def __init__(self, evaluators: Sequence[DatasetEvaluator], blanks: Optional[Dict[str, Any]] = None):
        super().__init__()
        names = [e.name for e in evaluators]
        dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if dup is not None:
            raise WsolError(f"two evaluators are named {dup!r}")
        self.evaluators: List[DatasetEvaluator] = list(evaluators)
        self.blanks = dict(blanks or {})
        self.uses_forward = any(e.uses_forward for e in self.evaluators)
        self.uses_maps = any(e.uses_maps for e in self.evaluators)

    def __getitem__(self, name: str) -> DatasetEvaluator:
        for e in self.evaluators:
            if e.name == name:
                return e
        raise KeyError(name)

    def get(self, name: str) -> Optional[DatasetEvaluator]:
        """The evaluator called ``name``, or None."""
        return next((e for e in self.evaluators if e.name == name), None)

    # ------------------------------------------------------------ state: each evaluator's, prefixed by its name
    def state_specs(self) -> Tuple[StateSpec, ...]:
        return tuple(StateSpec(f"{e.name}.{s.name}", s.reduce, s.doc) for e in self.evaluators
                     for s in e.state_specs())

    def reset(self) -> None:
        for e in self.evaluators:
            e.reset()

    def state_dict(self) -> Dict[str, Any]:
        return {f"{e.name}.{k}": v for e in self.evaluators for k, v in e.state_dict().items()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        for e in self.evaluators:
            e.load_state_dict({s.name: state[f"{e.name}.{s.name}"] for s in e.state_specs()})

    # ------------------------------------------------------------ the contract
    def process_forward(self, batch) -> None:
        for e in self.evaluators:
            if e.uses_forward:
                e.process_forward(batch)

    def process(self, batch) -> None:
        for e in self.evaluators:
            e.process(batch)

    def evaluate(self) -> Dict[str, Any]:
        """The evaluators' summaries in order, then the blanks of the absent ones."""
        out: Dict[str, Any] = {}
        owners: Dict[str, str] = {}
        for e in self.evaluators:
            numbers = e.evaluate()
            _refuse_duplicates("summary", owners, e.name, numbers)
            out.update(numbers)
        for k, v in self.blanks.items():
            out.setdefault(k, v)
        return out

    def per_image(self) -> Optional[pd.DataFrame]:
        """The evaluators' columns side by side, rows in the first one's order, status and
        reason last; the index is reset."""
        frames = [(e.name, f) for e in self.evaluators for f in [e.per_image()] if f is not None]
        if not frames:
            return None
        base = frames[0][1]
        if not len(base):
            return base.reset_index(drop=True)
        owners: Dict[str, str] = {}
        parts = []
        for name, f in frames:
            _refuse_duplicates("per_image", owners, name, f.columns)
            parts.append(f if f.index.equals(base.index) else f.reindex(base.index))
        merged = pd.concat(parts, axis=1)
        tail = [c for c in TAIL_COLUMNS if c in merged.columns]
        return merged[[c for c in merged.columns if c not in tail] + tail].reset_index(drop=True)

    def curves(self) -> Optional[pd.DataFrame]:
        parts = [c for e in self.evaluators for c in [e.curves()] if c is not None]
        return pd.concat(parts, ignore_index=True) if parts else None
