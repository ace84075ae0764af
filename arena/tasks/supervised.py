"""Small supervised tasks: the logic gates, n-bit parity, the full adder, and function approximation."""

from __future__ import annotations

import numpy as np

from arena.tasks.base import Forward, TaskInfo

EPS = 1e-7


def loss_per_member(predictions: np.ndarray, targets: np.ndarray, loss: str) -> np.ndarray:
    """Mean loss of each member: predictions (P, B, out), targets (B, out) -> (P,)."""
    if loss == "bce":
        p = np.clip(predictions, EPS, 1 - EPS)
        values = -(targets * np.log(p) + (1 - targets) * np.log(1 - p))
    else:
        values = (predictions - targets) ** 2
    return values.reshape(values.shape[0], -1).mean(axis=1)


class SupervisedTask:
    """Training data, a held-out set, a loss, and a solved rule.

    Logic tasks train and score on the whole truth table; function tasks train on a fixed sample and
    score on a dense held-out grid. The data never depends on the run's seed: every run of every method
    sees the same data.
    """

    def __init__(self, info: TaskInfo, x_train, y_train, x_test, y_test, mse_threshold: float | None = None):
        self.info = info
        self.x_train = np.ascontiguousarray(x_train, dtype=np.float32)
        self.y_train = np.ascontiguousarray(y_train, dtype=np.float32)
        self.x_test = np.ascontiguousarray(x_test, dtype=np.float32)
        self.y_test = np.ascontiguousarray(y_test, dtype=np.float32)
        self.mse_threshold = mse_threshold  # None: a logic task, solved by the 0.5 rule
        self._target_sign = np.where(self.y_test > 0.5, 1.0, -1.0).astype(np.float32)
        # Logic tasks score on their training set (the whole truth table): a method's solve check may
        # reuse the forward pass it trained with instead of running a second one.
        self.scores_on_training_set = bool(
            np.array_equal(self.x_train, self.x_test) and np.array_equal(self.y_train, self.y_test)
        )

    @property
    def is_logic(self) -> bool:
        return self.mse_threshold is None

    def fitness(self, population_forward: Forward, episode_seed: int = 0) -> tuple[np.ndarray, int]:
        predictions = population_forward(self.x_train)
        losses = loss_per_member(predictions, self.y_train, self.info.loss)
        return -losses, predictions.shape[0] * len(self.x_train)

    def evaluate(self, forward: Forward) -> tuple[float, bool, dict]:
        # Called after every epoch or generation, so it is kept to a few numpy calls on small arrays.
        predictions = forward(self.x_test)
        mse, solved, signed = self.rule(predictions[None])
        mse, solved = float(mse[0]), bool(solved[0])
        if not np.isfinite(mse):
            return float("inf"), False, {"mse": None}
        if self.is_logic:
            # Margin: how far the worst output is on the right side of 0.5 (negative: a row is wrong).
            margin = float(signed[0].min())
            return mse, solved, {"mse": mse, "margin": margin, "accuracy": float((signed[0] > 0).all(axis=1).mean())}
        return mse, solved, {"mse": mse, "threshold": self.mse_threshold}

    def evaluate_many(self, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`evaluate`'s score and solved for S networks at once, from their held-out predictions (S, M, out):
        the same rule (`rule`), so a batched check (backprop's stacked seeds) judges as an unbatched one."""
        mse, solved, _ = self.rule(predictions)
        return np.where(np.isfinite(mse), mse, np.inf), solved

    def rule(self, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The task's one solve rule on S networks' held-out predictions (S, M, out): each one's mean
        squared error (S,), solved (S,), and on logic tasks the signed distances from 0.5 (S, M, out).
        Logic: solved when every output is on the right side of 0.5; functions: mse below the threshold.
        The squared errors are summed by one float32 dot product per network (a batched matmul), the
        same sum whether judged alone or with others."""
        errors = (predictions - self.y_test).reshape(len(predictions), -1)
        mse = np.matmul(errors[:, None, :], errors[:, :, None])[:, 0, 0].astype(np.float64) / errors.shape[1]
        finite = np.isfinite(mse)
        if self.is_logic:
            signed = (predictions - 0.5) * self._target_sign
            return mse, (signed.reshape(len(predictions), -1).min(axis=1) > 0) & finite, signed
        return mse, (mse < self.mse_threshold) & finite, None


# --- the data -------------------------------------------------------------------------------------

GATES = {
    "xor": lambda a, b: a ^ b,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "nand": lambda a, b: 1 - (a & b),
    "nor": lambda a, b: 1 - (a | b),
    "xnor": lambda a, b: 1 - (a ^ b),
}


def all_bit_rows(n: int) -> np.ndarray:
    """All 2^n rows of n bits, in counting order."""
    return ((np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1).astype(np.int64)


def gate_data(name: str):
    rows = all_bit_rows(2)
    y = GATES[name](rows[:, 0], rows[:, 1])[:, None]
    return rows, y


def parity_data(n: int):
    rows = all_bit_rows(n)
    return rows, (rows.sum(axis=1) % 2)[:, None]


def full_adder_data():
    rows = all_bit_rows(3)
    total = rows.sum(axis=1)
    return rows, np.stack([total % 2, total // 2], axis=1)


# name: (function, input range per variable, training points, threshold, description)
FUNCTIONS = {
    "sine": (lambda x: np.sin(x[:, 0]), (-np.pi, np.pi), 1e-3, "sin(x) on [-pi, pi]: smooth"),
    "damped": (
        lambda x: np.exp(-0.25 * x[:, 0] ** 2) * np.cos(3 * x[:, 0]),
        (-np.pi, np.pi),
        2e-3,
        "exp(-x^2/4) cos(3x) on [-pi, pi]: a damped oscillation, smooth but wiggly",
    ),
    "abs": (lambda x: np.abs(x[:, 0]), (-1.0, 1.0), 1e-3, "|x| on [-1, 1]: continuous, not differentiable at 0"),
    "step": (
        lambda x: (x[:, 0] > 0).astype(np.float64),
        (-1.0, 1.0),
        1e-2,
        "0 for x <= 0, 1 for x > 0 on [-1, 1]: discontinuous",
    ),
    "ripple2d": (
        lambda x: np.sin(x[:, 0]) * np.cos(x[:, 1]),
        (-np.pi / 2, np.pi / 2),
        2e-3,
        "sin(x) cos(y) on [-pi/2, pi/2]^2: a function of two variables",
    ),
}
FUNCTION_DIMS = {"ripple2d": 2}
TRAIN_POINTS = {1: 64, 2: 256}
TEST_POINTS_PER_AXIS = {1: 1000, 2: 64}
DATA_SEED = 20261128  # fixed: the sample is part of the task, not of the run


def function_data(name: str):
    fn, (low, high), _, _ = FUNCTIONS[name]
    dims = FUNCTION_DIMS.get(name, 1)
    rng = np.random.default_rng(DATA_SEED)
    x_train = rng.uniform(low, high, size=(TRAIN_POINTS[dims], dims))
    axis = np.linspace(low, high, TEST_POINTS_PER_AXIS[dims])
    x_test = np.stack(np.meshgrid(*([axis] * dims), indexing="ij"), axis=-1).reshape(-1, dims)
    return x_train, fn(x_train)[:, None], x_test, fn(x_test)[:, None]
