"""Issue 17 D5, D6, D8: API inputs that used to give silent wrong answers or raw errors."""

import warnings

import numpy as np
import pytest

import qeqprop as qp
from qeqprop.errors import LargeNudgeWarning


@pytest.fixture(scope="module")
def instance():
    return qp.random_tfim_instance(4)


# -- D5: relative_error compares like with like ------------------------------------------
def test_relative_error_refuses_different_names():
    with pytest.raises(ValueError, match=r"estimate lacks \['b'\] and has extra \['J'\]"):
        qp.relative_error({"J": [1, 2]}, {"b": [1, 2]})


def test_relative_error_refuses_different_shapes():
    with pytest.raises(ValueError, match=r"estimate\['J'\] has shape \(2,\) but reference\['J'\] has shape \(3,\)"):
        qp.relative_error({"J": [1.0, 2.0]}, {"J": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="reference must be a dict"):
        qp.relative_error({"J": [1.0]}, [1.0])


def test_relative_error_value():
    assert qp.relative_error({"J": [3.0, 5.0], "b": [0.0]}, {"b": [0.0], "J": [3.0, 4.0]}) == pytest.approx(0.2)


# -- D6: complex input is refused, naming the argument ----------------------------------------
@pytest.mark.parametrize("where, match", [("x", r"^x is complex"), ("y", r"^y is complex"),
                                          ("J", r"^params\['J'\] is complex")])
def test_complex_input_refused(instance, where, match):
    net, params, x, y = instance
    params = dict(params)
    if where == "x":
        x = x + 0.5j
    elif where == "y":
        y = y.astype(complex)  # even a zero imaginary part: the caller must say np.real
    else:
        params["J"] = params["J"] + 0j
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way
        for call in (qp.ep_gradient, qp.reference_gradient):
            with pytest.raises(ValueError, match=match):
                call(net, params, x, y)


def test_complex_batch_refused(instance):
    net, params, x, _ = instance
    with pytest.raises(ValueError, match="is complex"):
        net.equilibrate(params, x * 1j)
    with pytest.raises(ValueError, match="xs is complex"):
        net.hamiltonian.coefficients_batch(params, np.stack([x, x]) * 1j)


def test_empty_batch_refused(instance):
    """An empty minibatch (e.g. a slice past the end of the data) names y, not an IndexError deep in a solver."""
    net, params, x, y = instance
    with pytest.raises(ValueError, match="y holds no samples"):
        qp.ep_gradient(net, params, np.empty((0, x.size)), np.empty((0, y.size)))


# -- D8: gradcheck arguments ---------------------------------------------------------------------
@pytest.mark.parametrize("betas, match", [((1e-2,), "at least two distinct"), ((), "at least two distinct"),
                                          ((1e-2, 1e-2), "at least two distinct"), ((1e-2, -1e-3), "betas must be a finite number > 0"),
                                          ((1e-2, np.nan), "betas must be a finite number > 0"), ("ab", "betas must be a list")])
def test_gradcheck_betas(instance, betas, match):
    with pytest.raises(ValueError, match=match):
        qp.gradcheck(*instance, betas=betas)


@pytest.mark.parametrize("step", [0.0, -1e-4, np.inf])
def test_gradcheck_fd_step(instance, step):
    with pytest.raises(ValueError, match="fd_step must be a finite number > 0"):
        qp.gradcheck(*instance, fd_step=step)


def test_gradcheck_two_betas(instance):
    report = qp.gradcheck(*instance, betas=(2e-2, 1e-2))
    assert report["slopes"]["centered"] == pytest.approx(2.0, abs=0.05)


# -- D8: beta too large for the free gap ------------------------------------------------------------
def test_huge_beta_warns(instance):
    net, params, x, y = instance
    with pytest.warns(LargeNudgeWarning, match="beta=1e\\+06 is too large") as caught:
        result = qp.ep_gradient(net, params, x, y, beta=1e6)
    assert caught[0].filename == __file__  # points at the caller's line
    assert qp.relative_error(result.grad, qp.reference_gradient(net, params, x, y)) > 0.99  # saturated: ~0


def test_large_nudge_criterion(instance):
    """The warning fires exactly where beta * sum_j |w_j| reaches half the free gap."""
    net, params, x, y = instance
    free = net.equilibrate(params, x)
    threshold = net.nudge_limit(net.batch_view(1).stack([free]), net.nudge(free, y)[None])[0]
    assert threshold == pytest.approx(free.gap / 2 / np.abs(net.nudge(free, y)).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error", LargeNudgeWarning)
        qp.ep_gradient(net, params, x, y, beta=0.99 * threshold)
        qp.ep_gradient(net, params, np.stack([x, x]), np.stack([y, y]), beta=1e-2)  # batch path
    with pytest.warns(LargeNudgeWarning):
        qp.ep_gradient(net, params, x, y, beta=1.01 * threshold)


def test_large_nudge_at_finite_temperature():
    """A degenerate ground state (Gamma = 0) is harmless at T > 0: the scale is max(gap, T)."""
    net = qp.TFIMNetwork(3, "complete", n_inputs=2, output_qubits=[2], gamma=0.0, temperature=0.3)
    params, x, y = net.init_params(0), np.zeros(2), np.array([1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", LargeNudgeWarning)
        qp.ep_gradient(net, params, x, y, beta=1e-2)
    with pytest.warns(LargeNudgeWarning):
        qp.ep_gradient(net, params, x, y, beta=10.0)


# -- D8: a stale free state ------------------------------------------------------------------------
def test_stale_free_state_refused(instance):
    net, params, x, y = instance
    free = qp.ep_gradient(net, params, x, y).free
    moved = {k: v + 1e-3 for k, v in params.items()}
    with pytest.raises(ValueError, match="^free: the free state of sample 0 is not the equilibrium"):
        qp.ep_gradient(net, moved, x, y, free=free)
    with pytest.raises(ValueError, match="^free: "):
        qp.ep_gradient(net, params, -x, y, free=free)
    ok = qp.ep_gradient(net, params, x, y, free=free, beta=1e-3)
    assert qp.relative_error(ok.grad, qp.reference_gradient(net, params, x, y)) < 1e-5


def test_stale_batch_free_state_refused(instance):
    net, params, x, y = instance
    X, Y = np.stack([x, -x]), np.stack([y, y])
    free = qp.ep_gradient(net, params, X, Y).free
    qp.ep_gradient(net, params, X, Y, free=free)
    with pytest.raises(ValueError, match="2 of 2 samples"):
        qp.ep_gradient(net, params, X[::-1], Y, free=free)
    with pytest.raises(ValueError, match="free holds 2 states but x has 1 samples"):
        qp.ep_gradient(net, params, X[:1], Y[:1], free=free)


def test_stale_thermal_free_state_refused():
    net = qp.TFIMNetwork(3, "chain", n_inputs=1, temperature=0.5)
    params, x, y = net.init_params(0), np.array([0.4]), np.array([0.2])
    free = net.equilibrate(params, x)
    qp.ep_gradient(net, params, x, y, free=free)
    with pytest.raises(ValueError, match="^free: "):
        qp.ep_gradient(net, params, -x, y, free=free)


def test_warnings_work_from_python_c_and_stdin():
    """errors.warn attributes a warning to the caller's line also where the caller has no file
    (``python -c``, stdin, the interactive prompt); it used to raise ImportError there."""
    import subprocess
    import sys

    code = "from qeqprop.errors import warn; warn('gap below gap_tol', UserWarning)"
    for argv, stdin in (([sys.executable, "-c", code], None), ([sys.executable, "-"], code)):
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert ":1: UserWarning: gap below gap_tol" in done.stderr
