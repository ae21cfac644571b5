"""Review r87 F2: River's parameter grids read a tuple as ``(class, params)``, so TrainableLearner's
``hidden``, which had to be a tuple, could not be varied in ``utils.expand_param_grid`` (nor in the model
selection that takes its grids). A list of widths is taken now, and goes on as the tuple would."""

from river import utils

from stream_cl.trainable import TrainableLearner


def test_hidden_widths_vary_in_a_river_parameter_grid():
    models = utils.expand_param_grid(TrainableLearner(device="cpu"), {"hidden": [[16], [8, 8]]})
    assert [m.widths_ for m in models] == [(16,), (8, 8)]
    listed, tupled = TrainableLearner(hidden=[8], device="cpu"), TrainableLearner(hidden=(8,), device="cpu")
    for i in range(20):
        listed.learn_one({"x": float(i)}, i % 2)
        tupled.learn_one({"x": float(i)}, i % 2)
    assert listed.predict_proba_one({"x": 3.0}) == tupled.predict_proba_one({"x": 3.0})
    restored = TrainableLearner(hidden=(8,), device="cpu").load_state_dict(listed.state_dict())
    assert restored.predict_proba_one({"x": 3.0}) == listed.predict_proba_one({"x": 3.0})
