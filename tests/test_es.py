"""OpenAI-ES (arena.methods.es): the optimiser on its own (a small ask/tell driver), then through the one
population loop and the service, as a method registered with its one line."""

from __future__ import annotations

import numpy as np
import pytest

from arena.methods import es


def settings(**values) -> es.ESSettings:
    return es.ESSettings(**values)


def test_centered_ranks_span_minus_half_to_half_in_fitness_order():
    shaped = es.centered_ranks(np.array([3.0, -1.0, 10.0, 0.5]))
    assert shaped.tolist() == [pytest.approx(1 / 6), -0.5, 0.5, pytest.approx(-1 / 6)]
    # Invariant to a monotone change of the fitness: only the order counts.
    assert es.centered_ranks(np.exp(np.array([3.0, -1.0, 10.0, 0.5]))).tolist() == shaped.tolist()


def test_members_are_mirrored_pairs_around_the_mean():
    optimiser = es.OpenAIES(np.arange(5.0), settings(population_size=8, sigma=0.3), np.random.default_rng(0))
    members = optimiser.ask()
    assert members.shape == (8, 5)
    np.testing.assert_allclose(members[:4] + members[4:], np.tile(2 * np.arange(5.0), (4, 1)))
    np.testing.assert_allclose(members[:4] - np.arange(5.0), 0.3 * optimiser.noise)


def test_the_gradient_estimate_points_uphill():
    """One step on a linear fitness w . x moves the mean along w (the rank-shaped estimate is proportional to it in expectation)."""
    direction = np.array([1.0, -2.0, 0.5, 0.0])
    optimiser = es.OpenAIES(np.zeros(4), settings(population_size=2000, sigma=0.1, optimizer="sgd", momentum=0.0, learning_rate=0.1), np.random.default_rng(1))
    members = optimiser.ask()
    assert optimiser.tell(members @ direction) == 0  # spends no evaluation of its own
    step = optimiser.mean
    cosine = step @ direction / (np.linalg.norm(step) * np.linalg.norm(direction))
    assert cosine > 0.95
    weights, row = optimiser.champion()
    assert row == int(np.argmax(members @ direction)) and np.array_equal(weights, members[row])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_small_driver_finds_the_optimum_of_a_sphere(optimizer):
    """ask/tell alone, without Arena's loop: the mean walks to the optimum of -|x - target|^2."""
    target = np.linspace(-1, 1, 10)
    optimiser = es.OpenAIES(np.zeros(10), settings(population_size=20, sigma=0.05, learning_rate=0.05 if optimizer == "adam" else 0.002, optimizer=optimizer), np.random.default_rng(2))
    start = np.linalg.norm(optimiser.mean - target)
    for _ in range(400):
        members = optimiser.ask()
        optimiser.tell(-np.sum((members - target) ** 2, axis=1))
    assert np.linalg.norm(optimiser.mean - target) < 0.05 * start


def test_weight_decay_subtracts_its_share_of_the_mean_from_the_step():
    """Two optimisers with the same noise, with and without decay: SGD's steps differ by lr x decay x mean."""
    mean = np.array([2.0, -1.0, 0.5])
    plain, decayed = (
        es.OpenAIES(mean, settings(population_size=6, weight_decay=decay, optimizer="sgd", momentum=0.0, learning_rate=0.1), np.random.default_rng(3))
        for decay in (0.0, 0.2)
    )
    for optimiser in (plain, decayed):
        members = optimiser.ask()
        optimiser.tell(members.sum(axis=1))
    np.testing.assert_allclose(decayed.mean - plain.mean, -0.1 * 0.2 * mean)


def test_population_size_must_be_even_and_is_bounded():
    from arena.errors import ArenaError
    from arena.runspec import resolve

    with pytest.raises(ArenaError) as odd:
        resolve("xor", "es", settings={"population_size": 51})
    assert "population_size" in str(odd.value.location) and "even" in odd.value.message
    schema = es.ESSettings.model_json_schema()["properties"]
    assert schema["population_size"]["maximum"] == 10_000 and schema["sigma"]["exclusiveMinimum"] == 0


# --- through the population loop -----------------------------------------------------------------


def test_es_solves_xor_through_the_loop_bit_for_bit_and_counts_every_member():
    from arena import execute, resolve

    spec = resolve("xor", "es", {"evaluations": 200_000})
    first, again = execute(spec, 0), execute(spec, 0)
    assert first.solved and first.evaluations_to_solve <= 200_000
    assert first.weights == again.weights and [(p["evaluations"], p["score"]) for p in first.curve] == [(p["evaluations"], p["score"]) for p in again.curve]
    # One evaluation per member per training sample (xor: 4 rows): every generation costs P x 4.
    assert first.evaluations % (spec.settings.population_size * 4) == 0
    assert first.metrics["generations"] * spec.settings.population_size * 4 == first.evaluations
    assert execute(spec, 1).weights != first.weights


def test_lock_step_seeds_are_each_their_own_run():
    from arena import execute, resolve
    from arena.runner import execute_seeds

    spec = resolve("parity-3", "es", {"evaluations": 60_000, "stop_on_solve": False})
    together = execute_seeds(spec, [0, 1, 2])
    for seed, result in zip([0, 1, 2], together):
        alone = execute(spec, seed)
        assert result.metrics["batched"] == 3
        assert result.weights == alone.weights and result.evaluations == alone.evaluations and result.score == alone.score


def test_the_registry_says_everything_about_es():
    from arena.methods import ALGORITHMS, METHODS
    from arena.runspec import resolve
    from arena.service.schemas import run_memory_floats

    method = METHODS["es"]
    assert ALGORITHMS["es"] is es and method.label == "OpenAI-ES" and method.colour == es.COLOUR
    floats, field, words = run_memory_floats(resolve("parity-4", "es", settings={"population_size": 100}))
    n = resolve("parity-4", "es").architecture.num_parameters
    assert (floats, field) == (n * (100 + 50 + 3), "population_size") and "noise" in words


# --- through the service: its own queue and worker, from the registration alone -------------------


@pytest.mark.parametrize("service", ["embedded"], indirect=True)
def test_an_es_job_runs_on_its_own_queue_in_the_service(service):
    worker = service.start_worker(queues="es", concurrency=1)
    try:
        created = service.submit({"task": "xor", "methods": ["es"], "seeds": 2, "budget": {"evaluations": 200_000}})
        job = service.wait_job(created["job_id"], timeout=120)
        assert job["status"] == "succeeded", service.diagnosis(created["job_id"])
        assert {run["method"] for run in job["runs"]} == {"es"} and all(run["solved"] for run in job["runs"])
        run = service.client.get(f"/runs/{job['runs'][0]['id']}").json()
        assert run["spec"]["algorithm"] == "es" and {"torch", "numpy", "arena"} <= set(run["library_versions"])
        assert "es" in service.client.get("/methods").json()
    finally:
        service.kill_worker(worker)
        service.workers.remove(worker)


# --- the hybrid (arena.methods.hybrid): a GA whose members take Adam steps, every backward pass counted ---


def test_the_hybrid_counts_every_gradient_step_and_solves_xor():
    from arena import execute, resolve

    spec = resolve("xor", "hybrid", {"evaluations": 200_000})
    result = execute(spec, 0)
    population, steps, samples = spec.settings.population_size, spec.settings.steps, 4
    # Per generation: the scoring forward (1 per sample) plus each step's forward (1) and backward (2).
    assert result.evaluations == result.metrics["generations"] * population * samples * (1 + 3 * steps)
    assert result.solved and execute(spec, 0).weights == result.weights


@pytest.mark.parametrize("inheritance", ["lamarckian", "baldwinian"])
def test_lamarckian_members_inherit_what_they_learned_and_baldwinian_ones_do_not(inheritance):
    from arena.methods import hybrid
    from arena.models.network import initial_vectors
    from arena.runspec import resolve
    from arena.tasks import make_task

    spec = resolve("xor", "hybrid", settings={"inheritance": inheritance, "elites": 20, "population_size": 20})
    genomes = initial_vectors(spec.architecture, 20).double().numpy()
    optimiser = hybrid.LearningGA(make_task("xor"), spec.architecture, spec.settings, genomes.copy(), np.random.default_rng(0))
    trained = optimiser.ask()
    assert not np.allclose(trained, genomes)  # the members learned
    fitness = -np.arange(20.0)  # already in order: with 20 elites the next genomes are the heritable ones, in order
    assert optimiser.tell(fitness) == 3 * spec.settings.steps * 20 * 4
    expected = trained if inheritance == "lamarckian" else genomes
    np.testing.assert_array_equal(optimiser.genomes, expected)
