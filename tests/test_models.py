import pytest
import torch

from arena.errors import ArenaError
from arena.validation import check
from arena.models import Architecture
from arena.models.network import PopulationForward, build_module, initial_vectors, module_to_vector, vector_to_module

ARCHITECTURES = [
    Architecture(2, (4,), 1, "tanh", "sigmoid"),
    Architecture(3, (5, 4), 2, "softsign", "tanh"),
    Architecture(6, (8,), 2, "relu", "identity"),
    Architecture(1, (), 1, "sigmoid", "identity"),
    Architecture(4, (3, 3, 3), 3, "sigmoid", "sigmoid"),
]


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda a: a.describe())
def test_batched_forward_equals_each_module(arch):
    torch.manual_seed(0)
    population = initial_vectors(arch, 7, "normal")
    forward = PopulationForward(arch)
    shared = torch.randn(9, arch.input_size)
    per_member = torch.randn(7, 9, arch.input_size)
    out_shared, out_member = forward(population, shared), forward(population, per_member)
    assert out_shared.shape == (7, 9, arch.output_size)
    module = build_module(arch)
    for i in range(7):
        vector_to_module(population[i], module)
        with torch.no_grad():
            torch.testing.assert_close(module(shared), out_shared[i], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(module(per_member[i]), out_member[i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda a: a.describe())
def test_flat_layout_is_parameters_to_vector(arch):
    module = build_module(arch)
    vector = module_to_vector(module)
    assert vector.numel() == arch.num_parameters
    assert torch.equal(vector, torch.nn.utils.parameters_to_vector(module.parameters()))
    other = build_module(arch)
    vector_to_module(vector, other)
    assert torch.equal(module_to_vector(other), vector)


def test_initial_distributions():
    torch.manual_seed(1)
    arch = Architecture(100, (50,), 1)
    normal = initial_vectors(arch, 4, "normal", 1.0)
    assert 0.9 < normal.std().item() < 1.1
    uniform = initial_vectors(arch, 4, "uniform", 0.3)
    assert uniform.abs().max().item() <= 0.3
    default = initial_vectors(arch, 4, "default")
    assert default[:, : 50 * 100].abs().max().item() <= 1 / 10  # 1/sqrt(fan_in)
    xavier = initial_vectors(arch, 2, "xavier")
    assert xavier[:, 5000:5050].abs().sum().item() == 0  # zero biases


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(input_size=0, hidden_sizes=(4,), output_size=1), "input_size"),
        (dict(input_size=2, hidden_sizes=(4, -1), output_size=1), "hidden_sizes"),
        (dict(input_size=2, hidden_sizes=(4,), output_size=1, hidden_activation="gelu"), "hidden_activation"),
        (dict(input_size=2, hidden_sizes=(4,), output_size=1, output_activation="relu"), "output_activation"),
        (dict(input_size=2, hidden_sizes=(1,) * 9, output_size=1), "hidden_sizes"),
    ],
)
def test_bad_architecture_names_the_field(kwargs, field):
    with pytest.raises(ArenaError) as error:
        check(Architecture, kwargs)
    assert error.value.field == field


def test_architecture_round_trip_and_unknown_fields():
    arch = Architecture(3, (5, 4), 2, "softsign", "tanh")
    assert check(Architecture, arch.model_dump(mode="json")) == arch
    with pytest.raises(ArenaError, match="unknown setting 'dropout'"):
        check(Architecture, {**arch.model_dump(), "dropout": 0.1})
