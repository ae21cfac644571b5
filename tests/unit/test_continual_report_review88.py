"""Review r88: the continual benchmark's tables reported DriftMonitor's filtered alarms as the detectors'
without saying so (the detections it ignored as improvements were nowhere), a mean delay as a mean of
per-seed means ("1399 ± 0" for one detection), and the replay verdicts on the means without the per-seed
split. They say each now."""

from benchmarks import continual


def _drift_run(seed, delays, ignored):
    det = {"signal": "error", "ignored_down": ignored, "alarms": len(delays), "detected": len(delays),
           "missed": 3 - len(delays), "delays": delays, "mean_delay": sum(delays) / len(delays) if delays else None,
           "false_alarms": 0, "false_alarms_per_10k": 0.0}
    configs = {name: {"accuracy": 0.9, "post_change_accuracy": 0.8} for name in
               ("no response", "homeostasis only", continual.MAIN_RESPONSE)}
    return {"stream": "sea", "seed": seed, "configs": configs, "detectors": {"ddm": det}}


def test_the_detector_table_counts_ignored_detections_and_pools_the_delays():
    runs = [_drift_run(0, [75, 1324], 2), _drift_run(1, [77], 1), _drift_run(2, [], 0)]
    lines = continual.drift_tables(runs)
    row = next(line for line in lines if line.startswith("| sea | ddm |"))
    assert row == "| sea | ddm | error | 3 / 9 | 492 (n=3) | 0.00 ± 0.00 | 3 |"  # was "426 ± 350", no ignored
    assert any('DriftMonitor(direction="up")' in line for line in lines)


def test_the_replay_verdicts_say_in_how_many_seeds_they_hold():
    def methods(none, res, a1, a05):
        out = {"finetune (no replay)": none, "reservoir replay": res, "power-law replay (alpha 1)": a1,
               "power-law replay (alpha 0.5)": a05}
        out = {k: {"forgetting": v, "average_accuracy": 0.9, "backward_transfer": 0.0} for k, v in out.items()}
        out["analytic head (exact, frozen features)"] = {"forgetting": 0.0, "average_accuracy": 0.9, "backward_transfer": 0.0}
        out["joint analytic head (upper bound)"] = {"average_accuracy": 0.9}
        return out

    runs = [{"methods": methods(0.3, 0.08, 0.12, 0.07)}, {"methods": methods(0.3, 0.05, 0.10, 0.06)},
            {"methods": methods(0.3, 0.09, 0.10, 0.06)}]
    lines = continual.checks({"permuted": runs, "split": runs, "drift": []})
    alpha05 = next(line for line in lines if line.startswith("- permuted: power-law replay (alpha 0.5)"))
    assert "**holds** on the means" in alpha05 and alpha05.endswith("per seed it holds in 2 of 3 seeds.")
