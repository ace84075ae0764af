"""`arena tasks` and `arena train` as a user runs them: a real process, real output, real exit codes."""

import json
import subprocess
import sys

import pytest


def arena(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "arena", *args], capture_output=True, text=True, timeout=timeout)


def test_tasks_lists_every_task():
    out = arena("tasks")
    assert out.returncode == 0
    for name in ("xor", "parity-8", "full-adder", "sine", "ripple2d"):
        assert f"\n{name} " in out.stdout
    listed = json.loads(arena("tasks", "--json").stdout)
    xor = next(t for t in listed if t["name"] == "xor")
    assert xor["score_name"] == "mse" and xor["higher_is_better"] is False and xor["input_size"] == 2


def test_tasks_settings_lists_defaults_and_ranges():
    out = arena("tasks", "--settings").stdout
    assert "population_size" in out and "learning_rate" in out and "tournament" in out


def test_train_prints_a_readable_summary():
    out = arena("train", "--task", "xor", "--method", "ga", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "ga on xor (seed 3)" in out.stdout and "solved:       yes" in out.stdout


def test_train_json_uses_the_contract_names_and_is_reproducible():
    args = ("train", "--task", "parity-3", "--method", "backprop", "--seed", "2", "--evaluations", "3000", "--no-stop-on-solve", "--json", "--weights")
    first, second = json.loads(arena(*args).stdout), json.loads(arena(*args).stdout)
    for key in ("score", "solved", "evaluations_to_solve", "seconds_to_solve", "evaluations", "seconds", "curve", "weights", "seed", "settings"):
        assert key in first
    assert first["weights"] == second["weights"] and first["score"] == second["score"]
    assert first["budget"] == {"evaluations": 3000, "seconds": None, "stop_on_solve": False}


def test_train_settings_and_architecture_options():
    out = json.loads(arena("train", "--task", "xor", "--method", "ga", "--set", "population_size=30", "--hidden", "3", "--json").stdout)
    assert out["settings"]["population_size"] == 30
    assert out["architecture"]["hidden_sizes"] == [3]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--task", "xr", "--method", "ga"), "unknown task 'xr'"),
        (("--task", "xor", "--method", "gaa"), "unknown method 'gaa'"),
        (("--task", "xor", "--method", "ga", "--set", "population_size=1"), "ga.population_size: Input should be greater than or equal to 2; got 1"),
        (("--task", "xor", "--method", "ga", "--set", "populaton_size=10"), "did you mean 'population_size'"),
        (("--task", "xor", "--method", "ga", "--set", "nonsense"), "--set takes KEY=VALUE"),
        (("--task", "xor", "--method", "backprop", "--set", "optimizer=adamw"), "backprop.optimizer: Input should be 'adam', 'sgd' or 'rmsprop'; got 'adamw' (did you mean 'adam'?)"),
        (("--task", "xor", "--method", "ga", "--hidden", "4,x"), "comma-separated integers"),
        (("--task", "xor", "--method", "ga", "--seconds", "-1"), "budget.seconds: Input should be greater than 0; got -1.0"),
        (("--task", "xor", "--method", "ga", "--seed", "-4"), "a seed must be an integer"),
        (("--task", "xor", "--method", "ga", "--hidden-activation", "gelu"), "architecture.hidden_activation: Input should be"),
        (("--task", "xor", "--method", "backprop", "--output-activation", "tanh"), "bce loss needs outputs in (0, 1)"),
        (("--task", "xor", "--method", "ga", "--plot", "x.png"), "needs a car task"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message):
    out = arena("train", *args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
