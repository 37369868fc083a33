"""Batched EP path: batched Lanczos vs dense eigh, batched gradients vs the per-sample reference paths."""

import copy

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import random_general_system
from qeqprop import ep_gradient, predict, random_tfim_instance, relative_error
from qeqprop.estimators import ESTIMATORS
from qeqprop.hamiltonians.jax_kernel import structure_of
from qeqprop.readout import Shots
from qeqprop.solvers.batched_lanczos import STEP_QUANTUM, BatchedLanczos, batched_ground_states


def flat_batch(grad):
    """Per-sample gradients {name: (B, ...)} as (B, n_params) (names sorted)."""
    return np.concatenate([np.reshape(grad[k], (len(grad[k]), -1)) for k in sorted(grad)], axis=1)


def on_jax(system, **batched):
    """The same model solving batches by batched Lanczos (solver "jax")."""
    other = copy.copy(system)
    other.solver, other.batched = "jax", batched
    return other


def tight(system):
    """Nudged phases to residual 1e-12 as well, so that two correct paths agree to ~1e-10."""
    system.nudge_tol = 1e-12
    return system


def grouped(system, coeffs):
    """(structure, diagonal, factors, dtype) of a batch of coefficient vectors."""
    table = system.hamiltonian.table
    dtype = jnp.float64 if table.is_real else jnp.complex128
    diagonal, flips = table.compile(coeffs)
    structure = structure_of(system.n_qubits, [(x, f[0]) for x, f in flips])
    return structure, jnp.asarray(diagonal, dtype), tuple(jnp.asarray(f, dtype) for _, f in flips), dtype


def tfim_model():
    system, params, *_ = random_tfim_instance(6, seed=3, solver="dense")
    return system, params


def complex_model():
    system, params, *_ = random_general_system(np.random.default_rng(4), 6, solver="lanczos")
    return system, params


@pytest.mark.parametrize("make", [tfim_model, complex_model], ids=["tfim", "complex"])
def test_batched_energies_gaps_and_states_equal_dense_eigh(make):
    system, params = make()
    ham = system.hamiltonian
    xs = np.random.default_rng(0).normal(size=(5, system.n_inputs))
    coeffs = ham.coefficients_batch(params, xs)
    structure, diagonal, factors, dtype = grouped(system, coeffs)
    start = jnp.asarray(np.random.default_rng(1).standard_normal((5, ham.table.dim)), dtype)
    result = batched_ground_states(structure, diagonal, factors, start, 1e-12, 48, with_gap=True)
    for b in range(5):
        values, vectors = np.linalg.eigh(ham.table.operator(coeffs[b]).to_dense())
        assert result.energies[b] == pytest.approx(values[0], abs=1e-11)
        assert result.gaps[b] == pytest.approx(values[1] - values[0], abs=1e-8)
        assert abs(np.vdot(vectors[:, 0], result.vectors[b])) == pytest.approx(1.0, abs=1e-12)
        assert result.residuals[b] <= 1e-12 * max(1.0, abs(values[0]))


def test_closed_krylov_space_and_block_length_from_measured_rate():
    """A 3-qubit register (D = 8 < steps) closes the Krylov space without a spurious Ritz value;
    on 6 qubits the block length extrapolated from the measured rate converges in one block."""
    system, params, *_ = random_tfim_instance(3, seed=1, solver="dense")
    coeffs = system.hamiltonian.coefficients_batch(params, np.zeros((2, system.n_inputs)))
    structure, diagonal, factors, _ = grouped(system, coeffs)
    small = batched_ground_states(structure, diagonal, factors, jnp.ones((2, 8)), 1e-12, 16, with_gap=True)
    exact = np.linalg.eigvalsh(system.hamiltonian.table.operator(coeffs[0]).to_dense())
    assert small.energies[0] == pytest.approx(exact[0], abs=1e-12)
    assert small.gaps[0] == pytest.approx(exact[1] - exact[0], abs=1e-12)

    system, params = tfim_model()
    coeffs = system.hamiltonian.coefficients_batch(params, np.random.default_rng(2).normal(size=(4, system.n_inputs)))
    structure, diagonal, factors, _ = grouped(system, coeffs)
    start = jnp.asarray(np.random.default_rng(3).standard_normal((4, 64)))
    first = batched_ground_states(structure, diagonal, factors, start, 1e-12, 16, max_blocks=8)
    assert first.applications > 17  # 16 steps were not enough: restarted
    again = batched_ground_states(structure, diagonal, factors, start, 1e-12, first.next_steps, max_blocks=1)
    assert again.applications == first.next_steps + 1
    assert np.all(again.residuals <= 1e-12 * np.maximum(1.0, np.abs(again.energies)))
    # with the gap the second pair's decay counts too: one block of the extrapolated length suffices
    first = batched_ground_states(structure, diagonal, factors, start, 1e-12, 16, with_gap=True, max_blocks=8)
    again = batched_ground_states(structure, diagonal, factors, start, 1e-12, first.next_steps, with_gap=True, max_blocks=1)
    assert again.applications == first.next_steps + 1 < first.applications


@pytest.mark.parametrize("make", [tfim_model, complex_model], ids=["tfim", "complex"])
def test_concurrent_slices_give_the_same_numbers(make, monkeypatch):
    """The batch split over 1, 2 or 3 threads (chunks of 2 samples, 5 samples padded to whole
    chunks per slice) gives bit-identical states, energies and gaps; bad ``workers`` is refused."""
    import qeqprop.solvers.batched_lanczos as batched_lanczos

    system, params = make()
    coeffs = system.hamiltonian.coefficients_batch(params, np.random.default_rng(5).normal(size=(5, system.n_inputs)))
    structure, diagonal, factors, dtype = grouped(system, coeffs)
    start = jnp.asarray(np.random.default_rng(6).standard_normal((5, system.hamiltonian.table.dim)), dtype)
    monkeypatch.setattr(batched_lanczos, "CACHE_BYTES", 2 * 48 * start.shape[1] * start.dtype.itemsize)
    assert batched_lanczos.chunk_size(5, 48, start.shape[1], start.dtype.itemsize) == 2
    results = [batched_ground_states(structure, diagonal, factors, start, 1e-12, 48, True, workers=w) for w in (1, 2, 3)]
    for other in results[1:]:
        for field in ("vectors", "energies", "gaps", "residuals"):
            np.testing.assert_array_equal(getattr(other, field), getattr(results[0], field))
    assert batched_lanczos.default_workers() >= 1
    with pytest.raises(ValueError, match="workers"):
        batched_ground_states(structure, diagonal, factors, start, 1e-12, 48, workers=0)


def test_non_convergence_reported_and_bad_steps_rejected():
    system, params = tfim_model()
    coeffs = system.hamiltonian.coefficients_batch(params, np.zeros((2, system.n_inputs)))
    structure, diagonal, factors, _ = grouped(system, coeffs)
    start = jnp.ones((2, 64))
    missed = batched_ground_states(structure, diagonal, factors, start, 1e-12, 8, max_blocks=1)
    assert not missed.converged.any() and np.all(missed.residuals > missed.asked)  # BatchedLanczos retries them
    with pytest.raises(ValueError, match=f"multiple of {STEP_QUANTUM}"):
        batched_ground_states(structure, diagonal, factors, start, 1e-12, 2 * STEP_QUANTUM + 2)
    with pytest.raises(ValueError, match="free_steps"):
        BatchedLanczos(system.hamiltonian.table, free_steps=10)


@pytest.mark.parametrize("make", [tfim_model, complex_model], ids=["tfim-dense", "complex-scipy"])
def test_batched_gradients_equal_reference_path_every_estimator(make):
    """Batched EP gradients equal the per-sample ep_gradient on the reference solvers (dense
    eigh, scipy ARPACK) to 1e-8 of the gradient scale, with losses, outputs and gaps."""
    system, params = make()
    tight(system)
    batched = on_jax(system)
    rng = np.random.default_rng(9)
    xs = rng.normal(size=(4, system.n_inputs))
    ys = rng.uniform(-1, 1, (4, system.n_outputs))
    for estimator in ESTIMATORS:
        result = ep_gradient(batched, params, xs, ys, beta=1e-2, estimator=estimator)
        assert result.free.vectors.shape == (4, system.hamiltonian.table.dim)  # solved as one batch
        grads = flat_batch(result.grad)
        for b in range(len(xs)):
            single = ep_gradient(system, params, xs[b], ys[b], beta=1e-2, estimator=estimator)
            expected = flat_batch({k: v[None] for k, v in single.grad.items()})[0]
            assert np.abs(grads[b] - expected).max() < 1e-8 * np.abs(expected).max()
            assert result.loss[b] == pytest.approx(single.loss, abs=1e-12)
            np.testing.assert_allclose(result.output[b], single.output, atol=1e-12)
    dense = [np.linalg.eigvalsh(system.hamiltonian.operator(params, x).to_dense())[:2] for x in xs]
    np.testing.assert_allclose(result.free.gaps, [e[1] - e[0] for e in dense], atol=1e-8)


@pytest.mark.parametrize("estimator", ["positive", "centered"])
def test_batched_shots_mean_and_stderr(estimator):
    """Batched measured gradients: per-sample means over seeds within a few standard errors of
    the exact EP gradient, reported standard errors equal to the empirical spread."""
    system, params, *_ = random_tfim_instance(5, seed=1, solver="jax")
    rng = np.random.default_rng(3)
    xs, ys = rng.normal(size=(3, system.n_inputs)), rng.uniform(-1, 1, (3, system.n_outputs))
    beta, shots, reps = 0.1, 20000, 300
    exact = flat_batch(ep_gradient(system, params, xs, ys, beta, estimator).grad)
    runs = [ep_gradient(system, params, xs, ys, beta, estimator, readout=Shots(shots), rng=k) for k in range(reps)]
    grads = np.array([flat_batch(r.grad) for r in runs])  # (reps, B, P)
    reported = np.array([flat_batch(r.stderr) for r in runs]).mean(axis=0)
    empirical = grads.std(axis=0, ddof=1)
    assert np.all(np.abs(grads.mean(axis=0) - exact) < 4.5 * empirical / np.sqrt(reps))
    np.testing.assert_allclose(reported, empirical, rtol=0.15)


@pytest.mark.slow  # ~70 s here under load: three fits, each compiling the batched and per-sample solvers
def test_training_with_batched_shots_resumes_exactly(tmp_path):
    """fit(shots=M) on a solver='jax' system takes the batched measured path; step k of epoch e
    samples with default_rng([seed, e, k]), so a resumed run equals the straight one bitwise."""
    from qeqprop import TFIMNetwork, fit, load_dataset

    data = load_dataset("xor", seed=1)
    system = TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2], solver="jax")
    options = dict(epochs=2, batch_size=32, learning_rate=0.05, seed=3, progress=False, shots=200, beta=0.2)
    straight = fit(system, data, **options)
    path = tmp_path / "checkpoint.pkl"
    fit(system, data, checkpoint=path, **{**options, "epochs": 1})
    resumed = fit(system, data, checkpoint=path, resume=True, **options)
    for key in straight.params:
        np.testing.assert_array_equal(straight.params[key], resumed.params[key])
    assert straight.history[-1]["grad_norm"] > 0


def long_block_models():
    """An 8-qubit TFIM and a 7-qubit complex model (D = 256, 128) with a batch of 3 inputs."""
    tfim, tfim_params, *_ = random_tfim_instance(8, seed=3, solver="jax")
    general, general_params, *_ = random_general_system(np.random.default_rng(4), 7, solver="jax")
    return [(tfim, tfim_params), (general, general_params)]


@pytest.mark.parametrize("index", [0, 1], ids=["tfim8", "complex7"])
def test_selective_orthogonalisation_keeps_the_gap_where_plain_lanczos_ghosts(index):
    """96 steps run far past the ground state's convergence: the plain recurrence grows a ghost
    copy of theta_0 (gap ~ 0), the guard against the lowest Ritz vector keeps the gap equal to
    eigh (as full re-orthogonalisation does), with energies and states."""
    system, params = long_block_models()[index]
    ham = system.hamiltonian
    xs = np.random.default_rng(5).normal(size=(3, system.n_inputs))
    coeffs = ham.coefficients_batch(params, xs)
    structure, diagonal, factors, dtype = grouped(system, coeffs)
    start = jnp.asarray(np.random.default_rng(1).standard_normal((3, ham.table.dim)), dtype)
    exact = [np.linalg.eigh(ham.table.operator(c).to_dense()) for c in coeffs]
    gaps = np.array([values[1] - values[0] for values, _ in exact])
    plain = batched_ground_states(structure, diagonal, factors, start, 1e-9, 96, True, "none", max_blocks=1)
    assert np.any(plain.gaps < 1e-3 * gaps)  # the ghost the guard exists for
    for mode in ("ground", "full"):
        result = batched_ground_states(structure, diagonal, factors, start, 1e-12, 96, True, mode, max_blocks=1)
        np.testing.assert_allclose(result.gaps, gaps, atol=1e-8)
        for b, (values, vectors) in enumerate(exact):
            assert result.energies[b] == pytest.approx(values[0], abs=1e-11)
            assert abs(np.vdot(vectors[:, 0], result.vectors[b])) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="orthogonalize must be one of"):
        batched_ground_states(structure, diagonal, factors, start, 1e-12, 96, True, "partial")


def test_near_degenerate_gap_resolved_and_warned_on_the_selective_path():
    """A ferromagnet in a weak transverse field (no longitudinal field): ground doublet split by
    2.9e-5. The selectively orthogonalised free phase (8 qubits, blocks of 32 >= D / 8) resolves
    the splitting like eigh and the batched EP call warns that the gap is below gap_tol."""
    from qeqprop import DegenerateGroundStateWarning

    system, params, *_ = random_tfim_instance(8, seed=3, solver="jax")
    params = {k: (np.full_like(v, 0.2) if k == "gamma" else v if k == "J" else np.zeros_like(v)) for k, v in params.items()}
    xs = np.zeros((2, system.n_inputs))
    values = np.linalg.eigvalsh(system.hamiltonian.operator(params, xs[0]).to_dense())
    assert 1e-5 < values[1] - values[0] < 1e-4
    coeffs = system.hamiltonian.coefficients_batch(params, xs)
    structure, diagonal, factors, dtype = grouped(system, coeffs)
    start = jnp.asarray(np.random.default_rng(1).standard_normal((2, 256)))
    result = batched_ground_states(structure, diagonal, factors, start, 1e-12, 96, True, "ground")
    np.testing.assert_allclose(result.gaps, values[1] - values[0], atol=1e-8)  # as for gapped spectra
    system.gap_tol = 1e-4
    system.batched = dict(free_steps=32, nudged_steps=32)
    with pytest.warns(DegenerateGroundStateWarning, match="spectral gap 2.85"):
        ep_gradient(system, params, xs, np.zeros((2, system.n_outputs)))


@pytest.mark.parametrize("steps", [8, 16])
def test_selective_orthogonalisation_short_blocks_and_restarts(steps):
    """Blocks shorter than the guard period, restarted from converged Ritz vectors until the gap
    converges (the first guard comes after one quantum): gaps and energies equal eigh."""
    system, params = tfim_model()
    ham = system.hamiltonian
    coeffs = ham.coefficients_batch(params, np.random.default_rng(2).normal(size=(3, system.n_inputs)))
    structure, diagonal, factors, _ = grouped(system, coeffs)
    start = jnp.asarray(np.random.default_rng(3).standard_normal((3, 64)))
    result = batched_ground_states(structure, diagonal, factors, start, 1e-12, steps, True, "ground", max_blocks=40)
    assert result.applications > steps + 1  # restarted
    for b in range(3):
        values = np.linalg.eigvalsh(ham.table.operator(coeffs[b]).to_dense())
        assert result.energies[b] == pytest.approx(values[0], abs=1e-11)
        assert result.gaps[b] == pytest.approx(values[1] - values[0], abs=1e-8)


def test_block_lengths_start_afresh_unless_kept():
    """By default every batched EP call starts from the same block lengths (bitwise repeatable);
    keep_block_lengths carries the learned ones over, with the same gradients to solver accuracy."""
    system, params = tfim_model()
    tight(system)
    rng = np.random.default_rng(11)
    xs, ys = rng.normal(size=(4, system.n_inputs)), rng.uniform(-1, 1, (4, system.n_outputs))
    fresh = on_jax(system)
    first, second = (flat_batch(ep_gradient(fresh, params, xs, ys, 1e-2).grad) for _ in range(2))
    np.testing.assert_array_equal(first, second)
    kept = copy.deepcopy(fresh)
    kept.keep_block_lengths = True
    assert kept.batch_view(4).solver is kept.batch_view(4).solver  # one solver across calls
    ep_gradient(kept, params, xs, ys, 1e-2)
    learned = kept.batch_view(4).solver.schedule  # from the measured convergence, per phase and tolerance
    assert sorted(key.split("@")[0] for key in learned) == ["free", "gap", "nudged"]
    assert learned != {"free": 64, "nudged": 32, "gap": 32} and kept.block_lengths() == learned and fresh.block_lengths() == {}
    again = flat_batch(ep_gradient(kept, params, xs, ys, 1e-2).grad)
    np.testing.assert_allclose(again, first, rtol=0, atol=1e-8 * np.abs(first).max())


def test_predict_reads_only_the_output_strings_and_equals_eigh():
    """qp.predict on the 7-qubit complex model (outputs Z6 and X5) computes the expectations of the
    output strings alone (the other flip groups are skipped) and equals <O_j> of eigh's ground states."""
    system, params = long_block_models()[1]
    ham = system.hamiltonian
    assert len(ham.output_strings) == 2 < len(ham.table)
    xs = np.random.default_rng(6).normal(size=(3, system.n_inputs))
    exact = []
    for c in ham.coefficients_batch(params, xs):
        vector = np.linalg.eigh(ham.table.operator(c).to_dense())[1][:, 0]
        exact.append(ham.outputs(ham.table.expectations(vector)))
    np.testing.assert_allclose(predict(system, params, xs), exact, atol=1e-10)
    states = system.batch_view(3).equilibrate(params, xs)
    np.testing.assert_allclose(states.outputs(ham), ham.outputs(states.expectations), atol=1e-13)


@pytest.mark.parametrize("index", [0, 1], ids=["tfim8", "complex7"])
def test_predict_solves_a_free_phase_without_its_gap(index):
    """predict skips the gap solve, not the free phase's own treatment: its cold solve keeps the free
    phase's block lengths and selective orthogonalisation (the learned key "free@tol", no "gap@" or
    "nudged@" one), at eigh's energies and outputs, while evaluation's pass also solves the gap."""
    system, params = long_block_models()[index]
    system = copy.deepcopy(system)
    system.keep_block_lengths = True
    ham = system.hamiltonian
    xs = np.random.default_rng(7).normal(size=(3, system.n_inputs))
    exact = [np.linalg.eigh(ham.table.operator(c).to_dense()) for c in ham.coefficients_batch(params, xs)]
    outputs = predict(system, params, xs)
    assert sorted(system.block_lengths()) == [f"free@{system.tol:.6g}"]
    np.testing.assert_allclose(outputs, [ham.outputs(ham.table.expectations(v[:, 0])) for _, v in exact], atol=1e-10)
    states = system.batch_view(3).equilibrate(params, xs)  # evaluation's free phase: with its gap
    assert sorted(key.split("@")[0] for key in system.block_lengths()) == ["free", "gap"]
    np.testing.assert_allclose(states.energies, [values[0] for values, _ in exact], atol=1e-11)
    np.testing.assert_allclose(states.gaps, [values[1] - values[0] for values, _ in exact], atol=1e-8)


def test_ep_call_solves_its_free_phase_to_the_ep_tolerance():
    """ep_gradient's batched free phase stops at its nudged phases' residual max(tol, nudge_tol beta^2)
    in a first block shortened for it (``first_free_steps``: 64 steps sized for 1e-12), while a free
    phase outside an EP call keeps ``tol``; the estimate equals the one from a free phase at tol to
    well within the EP bias."""
    from qeqprop.solvers.batched_lanczos import first_free_steps

    assert [first_free_steps(64, t) for t in (1e-14, 1e-12, 1.6e-6, 1e-3, 2.0)] == [64, 64, 32, 16, 16]
    system, params = long_block_models()[1]
    rng = np.random.default_rng(7)
    xs, ys = rng.normal(size=(3, system.n_inputs)), rng.uniform(-1, 1, (3, 2))
    beta = 0.05
    fast = ep_gradient(system, params, xs, ys, beta)
    exact_free = system.batch_view(3).equilibrate(params, xs)
    reference = ep_gradient(system, params, xs, ys, beta, free=exact_free)
    ep_tol = system.ep_tol((beta, -beta))
    assert ep_tol == pytest.approx(system.nudge_tol * beta**2) and ep_tol > 1e3 * system.tol
    assert np.all(fast.free.residuals <= ep_tol * np.maximum(1.0, np.abs(fast.free.energies)))
    assert np.all(exact_free.residuals <= system.tol * np.maximum(1.0, np.abs(exact_free.energies)))
    assert fast.free.iterations.max() < exact_free.iterations.min()
    bias = relative_error(reference.grad, ep_gradient(system, params, xs, ys, beta / 2, free=exact_free).grad)
    assert relative_error(fast.grad, reference.grad) < 1e-3 * bias


def test_block_lengths_follow_the_measured_need_in_step_quanta():
    """``steps_for`` asks for the extrapolated need plus STEP_MARGIN, rounded up to STEP_QUANTUM (4) and at
    least MIN_BLOCK_STEPS: a residual falling 100x per 16 steps from 1e-3 at step 16 reaches 5.6e-4 two steps
    later, so 18 x 1.1 = 19.8 -> 20 steps (24 with quanta of 8); a need met at the half block asks for the
    floor. A "ground" block shorter than its first guard period (GUARD_FIRST) still converges to eigh's
    ground states, restarted block after block."""
    from qeqprop.solvers.batched_lanczos import GUARD_FIRST, MIN_BLOCK_STEPS, STEP_MARGIN, steps_for

    half_estimate, estimate = np.array([[1e-3]]), np.array([[1e-5]])
    tol = 1e-3 * np.exp(2 * np.log(1e-2) / 16)
    assert STEP_QUANTUM == 4 and STEP_MARGIN == pytest.approx(1.1)
    assert steps_for([tol], 32, estimate, half_estimate) == 20
    assert steps_for([1.0], 8, estimate, half_estimate) == MIN_BLOCK_STEPS == 8
    assert steps_for([1e-9], 32, estimate, half_estimate) == 72  # 16 + 48 steps, x 1.1 = 70.4

    system, params = tfim_model()
    coeffs = system.hamiltonian.coefficients_batch(params, np.random.default_rng(2).normal(size=(3, system.n_inputs)))
    structure, diagonal, factors, dtype = grouped(system, coeffs)
    start = jnp.asarray(np.random.default_rng(3).normal(size=(3, system.hamiltonian.table.dim)), dtype)
    steps = STEP_QUANTUM
    assert steps < GUARD_FIRST
    solved = batched_ground_states(structure, diagonal, factors, start, 1e-10, steps, orthogonalize="ground",
                                   max_blocks=200)
    exact = [np.linalg.eigvalsh(system.hamiltonian.table.operator(c).to_dense())[0] for c in coeffs]
    assert solved.converged.all()
    np.testing.assert_allclose(solved.energies, exact, atol=1e-12)
