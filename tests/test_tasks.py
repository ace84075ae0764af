import numpy as np
import pytest

from arena.errors import ArenaError
from arena.models import Architecture
from arena.runspec import resolve
from arena.tasks import TASKS, make_task, task_info


def test_registry_has_the_issue_tasks():
    for name in ["xor", "and", "or", "nand", "nor", "xnor", "full-adder", "sine", "abs", "step", "damped", "ripple2d"]:
        assert name in TASKS
    for n in range(2, 9):
        assert f"parity-{n}" in TASKS


@pytest.mark.parametrize(
    "name, rows",
    [
        ("xor", [0, 1, 1, 0]),
        ("and", [0, 0, 0, 1]),
        ("or", [0, 1, 1, 1]),
        ("nand", [1, 1, 1, 0]),
        ("nor", [1, 0, 0, 0]),
        ("xnor", [1, 0, 0, 1]),
    ],
)
def test_gate_truth_tables(name, rows):
    task = make_task(name)
    assert task.x_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert task.y_train[:, 0].tolist() == rows


def test_parity_and_full_adder():
    task = make_task("parity-5")
    assert task.x_train.shape == (32, 5)
    assert np.array_equal(task.y_train[:, 0], task.x_train.sum(axis=1) % 2)
    adder = make_task("full-adder")
    total = adder.x_train.sum(axis=1)
    assert np.array_equal(adder.y_train[:, 0], total % 2) and np.array_equal(adder.y_train[:, 1], total // 2)


def test_logic_solved_rule_and_margin():
    task = make_task("xor")
    exact = lambda x: task.y_train * 0.8 + 0.1  # noqa: E731  every row 0.4 on the right side
    score, solved, metrics = task.evaluate(exact)
    assert solved and metrics["margin"] == pytest.approx(0.4) and metrics["accuracy"] == 1.0
    one_wrong = lambda x: np.array([[0.1], [0.9], [0.9], [0.6]], dtype=np.float32)  # noqa: E731
    score, solved, metrics = task.evaluate(one_wrong)
    assert not solved and metrics["margin"] == pytest.approx(-0.1) and metrics["accuracy"] == 0.75


def test_function_tasks_score_on_held_out_grid():
    task = make_task("sine")
    assert len(task.x_test) > 10 * len(task.x_train)
    assert not np.isin(task.x_test, task.x_train).all()
    score, solved, _ = task.evaluate(lambda x: np.sin(x))
    assert solved and score < 1e-10
    score, solved, _ = task.evaluate(lambda x: np.zeros_like(x))
    assert not solved and score == pytest.approx(0.5, abs=0.01)  # mean of sin^2


def test_data_does_not_depend_on_anything_but_the_task():
    a, b = make_task("ripple2d"), make_task("ripple2d")
    assert np.array_equal(a.x_train, b.x_train) and a.x_test.shape == (64 * 64, 2)


def test_fitness_is_negative_loss_per_member():
    task = make_task("sine")
    perfect = lambda x: np.stack([np.sin(x), np.zeros_like(x)])  # noqa: E731  members: exact, zero
    fitness, used = task.fitness(perfect, 0)
    assert used == 2 * len(task.x_train)
    assert fitness[0] == pytest.approx(0, abs=1e-10) and fitness[1] < -0.1


def test_unknown_task_names_valid_choices():
    with pytest.raises(ArenaError) as error:
        task_info("xr")
    assert "did you mean 'xor'" in str(error.value) and "parity-8" in str(error.value)


def test_architecture_must_fit_task():
    with pytest.raises(ArenaError, match="needs input_size 2 and output_size 1"):
        resolve("xor", "ga", architecture=Architecture(3, (4,), 1, "tanh", "sigmoid").model_dump())
    with pytest.raises(ArenaError, match="no options"):
        make_task("xor", {"track": "oval"})
