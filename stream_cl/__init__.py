"""stream-cl: streaming online continual learning with exact analytic ridge heads.

The learners are imported on first use (PEP 562), so tools that only need the
configuration or the decoder (``stream-cl --help``, the CLI's argument parsing) do
not pay for importing torch.

Where things are (each module's docstring says more; ``tests/unit/test_code_map.py`` holds this
list to the package's modules; the edges, Kafka and files, are :mod:`connectors`'):

* the learners: ``learner`` (``OnlineContinualLearner``, the default), ``heads.analytic``
  (``AnalyticClassifier``), ``trainable`` (``TrainableLearner``), ``factory`` (one from ``[model]``),
  ``base_learner`` (what they share), ``monitoring``, ``status``, ``memory``
* the default learner's steps: ``ensemble`` (design rows, heads, mixer), ``head_widths``, ``column_bound``,
  ``one_event`` (one event at a time), ``mixture_row``, ``batch_path`` (batches), ``mixing``,
  ``refusal``, ``continual_steps``, ``row_plan``, ``replayed_designs``, ``imbalance``, ``shadows``,
  ``learner_state`` (its checkpoint state)
* features and backbones: ``encoding`` (what a value means), ``features`` (``FeatureIndex``),
  ``feature_batch`` (a batch's columns), ``one_event_rows`` (the index's one-event rows), ``columns``,
  ``backbones.base``, ``backbones.standardize``, ``backbones.standardize_row``,
  ``backbones.random_features``, ``backbones.key_units``, ``backbones.design_row``,
  ``backbones.torch_module``, ``backbones.device``
* the ridge heads: ``heads.ridge`` (``RecursiveRidge``), ``heads.ridge_stats``, ``heads.ridge_one``,
  ``heads.ridge_rows``, ``heads.ridge_row_ways``, ``heads.ridge_factor``, ``heads.ridge_woodbury``,
  ``heads.class_head``, ``heads.analytic_design``, ``heads.analytic_state``; their linear algebra:
  ``heads.linalg`` (its public names), ``heads._linalg`` (numpy: ``NumpyLinalg``, ``make_linalg``),
  ``heads.torch_linalg``, ``heads.conditioning``, ``heads.scaled_triangle``, ``heads.mkl_solves``,
  ``blas_kernels``
* the SGD head: ``heads.sgd``, ``heads.sgd_rows``
* the trainable learner's parts: ``trainable_network``, ``mlp``, ``trainable_state``
* continual learning: ``replay.buffers``, ``replay.groups``, ``replay.rows``, ``replay.rng``,
  ``drift``, ``detectors``, ``homeostasis``, ``checks``
* partitions, the unit of state: ``parts``, ``part_stats``, ``online_parts``, ``part_exchange``,
  ``served_sums``, ``contribution``, ``local_swaps`` (reads from other threads that a swap cannot tear)
* events in: ``events`` (the records and protocols connectors speak), ``decode``, ``record_decoders``,
  ``field_values``, ``json_checks``, ``mapping_check``
* labels and prequential runs: ``pending``, ``pending_state``, ``pending_stores``, ``prequential``
* saved state: ``checkpoint`` (files), ``checkpoint_format``, ``model_state``, ``state_checks``
* configuration: ``bounds`` (the hyperparameters' bounds), ``config.building``, ``config.schema``,
  ``config.daemon_schema``, ``config.kafka_checks``, ``config.reading``, ``config.unread``,
  ``config.writing``
* measuring: ``metrics.lifelong``, ``metrics.prequential``, ``metrics.detection``, ``scenarios``;
  the bundled stream: ``data.make_demo``
* process settings: ``runtime``, ``numba_jit``
"""

from importlib import import_module

__all__ = ["AnalyticClassifier", "OnlineContinualLearner", "set_threads"]
__version__ = "0.1.0"

_LAZY = {"AnalyticClassifier": ".heads", "OnlineContinualLearner": ".learner", "set_threads": ".runtime"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # imported once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
