"""fastloss.jax: custom_vjp + pure_callback wrappers, against optax and jnp references."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
optax = pytest.importorskip("optax")

import fastloss  # noqa: E402
import fastloss.jax as flj  # noqa: E402


@pytest.fixture(autouse=True)
def _x64():
    """float64 needs x64; float32 cases pass float32 arrays explicitly. Restored after."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def _close(a, b, dtype):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), **_tol(dtype))


def _check(f, ref, args, dtype, argnums=0):
    """Value, grad under jit, and value_and_grad of fastloss.jax ``f`` against ``ref``."""
    v = f(*args)
    assert v.dtype == dtype
    _close(v, ref(*args), dtype)
    g = jax.jit(jax.grad(f, argnums=argnums))(*args)
    g_ref = jax.grad(ref, argnums=argnums)(*args)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_ref)):
        assert a.dtype == dtype
        _close(a, b, dtype)
    v2, g2 = jax.value_and_grad(f, argnums=argnums)(*args)
    _close(v2, v, dtype)
    for a, b in zip(jax.tree_util.tree_leaves(g2), jax.tree_util.tree_leaves(g)):
        _close(a, b, dtype)


DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


# -- against optax -------------------------------------------------------------------------------
@DTYPES
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_vs_optax(rng, dtype, reduction):
    x = jnp.asarray(rng.standard_normal((6, 5)).astype(dtype))
    y = jnp.asarray(rng.integers(0, 5, 6))
    w = jnp.asarray(rng.random(6).astype(dtype))
    red = {"mean": jnp.mean, "sum": jnp.sum, "none": lambda v: jnp.sum(w * v)}[reduction]
    wrap = (lambda v: v) if reduction != "none" else (lambda v: jnp.sum(w * v))
    _check(lambda x, y: wrap(flj.cross_entropy(x, y, reduction=reduction)),
           lambda x, y: red(optax.softmax_cross_entropy_with_integer_labels(x, y)), (x, y), dtype)


@DTYPES
def test_cross_entropy_smoothing_and_probabilities_vs_optax(rng, dtype):
    x = jnp.asarray(rng.standard_normal((2, 3, 4)).astype(dtype))
    y = rng.integers(0, 4, (2, 3))
    onehot = jax.nn.one_hot(y, 4, dtype=dtype)
    _check(lambda x: flj.cross_entropy(x, y, label_smoothing=0.2),
           lambda x: optax.softmax_cross_entropy(x, optax.smooth_labels(onehot, 0.2)).mean(),
           (x,), dtype)
    p = jnp.asarray(rng.dirichlet(np.ones(4), (2, 3)).astype(dtype))
    _check(lambda x: flj.cross_entropy(x, p), lambda x: optax.softmax_cross_entropy(x, p).mean(),
           (x,), dtype)


@DTYPES
def test_bce_and_sigmoid_focal_vs_optax(rng, dtype):
    x = jnp.asarray((3 * rng.standard_normal((5, 4))).astype(dtype))
    t = jnp.asarray(rng.random((5, 4)).astype(dtype))
    _check(lambda x: flj.binary_cross_entropy_with_logits(x, t),
           lambda x: optax.sigmoid_binary_cross_entropy(x, t).mean(), (x,), dtype)
    tb = jnp.asarray((rng.random((5, 4)) < 0.5).astype(dtype))
    _check(lambda x: flj.sigmoid_focal_loss(x, tb, alpha=0.25, gamma=2.0),
           lambda x: optax.sigmoid_focal_loss(x, tb, alpha=0.25, gamma=2.0).mean(), (x,), dtype)
    _check(lambda x: flj.sigmoid_focal_loss(x, tb, alpha=-1.0, gamma=0.5, reduction="sum"),
           lambda x: optax.sigmoid_focal_loss(x, tb, gamma=0.5).sum(), (x,), dtype)


@DTYPES
def test_regression_vs_optax(rng, dtype):
    x = jnp.asarray((2 * rng.standard_normal((4, 3))).astype(dtype))
    t = jnp.asarray((2 * rng.standard_normal((4, 3))).astype(dtype))
    # optax's huber equals PyTorch's (½d² inside, delta (|d| - delta/2) outside);
    # the target gets a gradient too (argnums=(0, 1))
    _check(lambda x, t: flj.huber_loss(x, t, delta=0.7),
           lambda x, t: optax.huber_loss(x, t, delta=0.7).mean(), (x, t), dtype, argnums=(0, 1))
    # optax.l2_loss is ½ (x - t)²: mse = 2 l2
    _check(lambda x, t: flj.mse_loss(x, t, reduction="sum"),
           lambda x, t: 2 * optax.l2_loss(x, t).sum(), (x, t), dtype, argnums=(0, 1))


@DTYPES
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_ctc_vs_optax(rng, dtype, reduction):
    n, t_max, c, s = 3, 10, 5, 3
    x = rng.standard_normal((n, t_max, c)).astype(dtype)  # batch first, as optax
    labels = rng.integers(1, c, (n, s))
    in_len = np.array([10, 8, 9])
    tgt_len = np.array([3, 1, 2])
    logit_pad = (np.arange(t_max)[None] >= in_len[:, None]).astype(dtype)
    label_pad = (np.arange(s)[None] >= tgt_len[:, None]).astype(dtype)
    w = jnp.asarray(rng.random(n).astype(dtype))

    def ref(x):
        per = optax.ctc_loss(x, logit_pad, labels, label_pad)
        if reduction == "none":
            return jnp.sum(w * per)
        return jnp.mean(per / tgt_len)

    def ours(x):  # (T, N, C) layout
        v = flj.ctc_loss(jnp.swapaxes(x, 0, 1), labels, in_len, tgt_len, reduction=reduction)
        return jnp.sum(w * v) if reduction == "none" else v

    _check(ours, ref, (jnp.asarray(x),), dtype)
    # batch_first=True: the (N,) cotangent goes over (N, T, C)
    _check(lambda x: jnp.sum(w * flj.ctc_loss(x, labels, in_len, tgt_len, reduction="none",
                                              batch_first=True)),
           lambda x: jnp.sum(w * optax.ctc_loss(x, logit_pad, labels, label_pad)),
           (jnp.asarray(x),), dtype)


@DTYPES
def test_triplet_vs_optax(rng, dtype):
    a, p, n = (jnp.asarray(rng.standard_normal((6, 4)).astype(dtype)) for _ in range(3))
    # optax adds eps to the sum of powers, PyTorch (and fastloss) to the difference: eps=0 agrees
    _check(lambda a, p, n: flj.triplet_margin_loss(a, p, n, margin=1.5, eps=0.0),
           lambda a, p, n: optax.losses.triplet_margin_loss(a, p, n, margin=1.5, eps=0.0).mean(),
           (a, p, n), dtype, argnums=(0, 1, 2))


# -- against jnp references -----------------------------------------------------------------------
def _focal_ref(x, y, gamma):
    logp = jax.nn.log_softmax(x, -1)
    lp = jnp.take_along_axis(logp, y[..., None], -1)[..., 0]
    return -((1 - jnp.exp(lp)) ** gamma) * lp


def _smooth_l1_ref(x, t, beta):
    d = jnp.abs(x - t)
    return jnp.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def _pinball_ref(x, t, q):
    d = t[:, None] - x
    return jnp.maximum(q * d, (q - 1) * d)


def _contrastive_ref(x1, x2, y, m):
    d = jnp.sqrt(jnp.sum((x1 - x2) ** 2, -1))
    return 0.5 * y * d**2 + 0.5 * (1 - y) * jnp.maximum(0.0, m - d) ** 2


@DTYPES
def test_others_vs_jnp(rng, dtype):
    x = jnp.asarray(rng.standard_normal((6, 5)).astype(dtype))
    y = jnp.asarray(rng.integers(0, 5, 6))
    _check(lambda x: flj.softmax_focal_loss(x, y, gamma=1.5),
           lambda x: _focal_ref(x, y, 1.5).mean(), (x,), dtype)
    t = jnp.asarray(rng.standard_normal((6, 5)).astype(dtype))
    _check(lambda x, t: flj.smooth_l1_loss(x, t, beta=0.5),
           lambda x, t: _smooth_l1_ref(x, t, 0.5).mean(), (x, t), dtype, argnums=(0, 1))
    _check(lambda x, t: flj.l1_loss(x, t, reduction="sum"),
           lambda x, t: jnp.abs(x - t).sum(), (x, t), dtype, argnums=(0, 1))
    q = np.array([0.1, 0.5, 0.9, 0.3, 0.7])
    ty = jnp.asarray(rng.standard_normal(6).astype(dtype))  # (N,) target of an (N, Q) input
    _check(lambda x, t: flj.pinball_loss(x, t, quantile=q),
           lambda x, t: _pinball_ref(x, t, q).mean(), (x, ty), dtype, argnums=(0, 1))
    x2 = jnp.asarray((np.asarray(x) + rng.standard_normal((6, 5))).astype(dtype))
    sim = jnp.asarray(rng.random(6).astype(dtype))
    _check(lambda a, b: flj.contrastive_loss(a, b, sim, margin=3.0),
           lambda a, b: _contrastive_ref(a, b, sim, 3.0).mean(), (x, x2), dtype, argnums=(0, 1))
    r1, r2 = x[:, 0], x2[:, 1]
    sign = jnp.asarray(rng.choice([-1.0, 1.0], 6).astype(dtype))
    _check(lambda a, b: flj.margin_ranking_loss(a, b, sign, margin=0.3),
           lambda a, b: jnp.maximum(0.0, -sign * (a - b) + 0.3).mean(), (r1, r2), dtype,
           argnums=(0, 1))


# -- reductions, weights, cotangents --------------------------------------------------------------
@pytest.mark.parametrize("name", ["cross_entropy", "binary_cross_entropy_with_logits",
                                  "huber_loss", "pinball_loss", "ctc_loss", "triplet_margin_loss",
                                  "margin_ranking_loss", "contrastive_loss"])
def test_matches_fastloss_with_cotangents_and_sample_weight(rng, name):
    """Every reduction, with sample_weight, and a non-trivial cotangent: = c * fastloss grad."""
    from fastloss._registry import REGISTRY

    spec = REGISTRY[name]
    x, target = spec.make_data(rng, spec.shapes[0], np.float64)
    extra = tuple(target) if spec.family in ("ctc", "pairwise") else (target,)
    n_batch = x.shape[1] if spec.family == "ctc" else x.shape[0]
    sw = rng.random(n_batch) + 0.5
    f = getattr(flj, name)
    n_in = 3 if name == "triplet_margin_loss" else 2 if spec.family == "pairwise" else 1
    argnums = tuple(range(n_in))
    arrays = (x,) + extra
    for reduction in ("mean", "sum", "none"):
        loss, grads = spec.func(*arrays, reduction=reduction, sample_weight=sw)
        grads = grads if isinstance(grads, tuple) else (grads,)
        c = rng.standard_normal(np.shape(loss)) if reduction == "none" else 2.5
        out, vjp = jax.vjp(lambda *d: f(*d, *arrays[n_in:], reduction=reduction,
                                         sample_weight=sw), *arrays[:n_in])
        np.testing.assert_allclose(out, loss, rtol=1e-12)
        got = vjp(jnp.asarray(c))
        for g_ours, g in zip(got, grads):
            if reduction == "none":
                if spec.family == "ctc":
                    cc = c[None, :, None]
                else:
                    cc = c.reshape(c.shape + (1,) * (g.ndim - c.ndim))
            else:
                cc = c
            np.testing.assert_allclose(g_ours, cc * g, rtol=1e-12, atol=1e-14)
        # under jit too
        g_jit = jax.jit(jax.grad(lambda *d: jnp.sum(jnp.asarray(c) * f(
            *d, *arrays[n_in:], reduction=reduction, sample_weight=sw)), argnums=argnums))(
            *arrays[:n_in])
        for g_ours, g_ref in zip(g_jit, got):
            np.testing.assert_allclose(g_ours, g_ref, rtol=1e-12, atol=1e-14)


def test_options_forwarded(rng):
    x = rng.standard_normal((7, 5))
    y = rng.integers(0, 5, 7)
    y[2] = 1
    opts = dict(weight=np.array([0.5, 2.0, 1.0, 1.5, 0.25]), ignore_index=1, label_smoothing=0.1)
    loss, grad = fastloss.cross_entropy(x, y, **opts)
    v, g = jax.jit(jax.value_and_grad(lambda x: flj.cross_entropy(x, y, **opts)))(x)
    np.testing.assert_allclose(v, loss, rtol=1e-12)
    np.testing.assert_allclose(g, grad, rtol=1e-12, atol=1e-15)
    # options as static arguments of jit
    f = jax.jit(flj.cross_entropy, static_argnames=("label_smoothing", "ignore_index"))
    np.testing.assert_allclose(f(x, y, label_smoothing=0.1, ignore_index=1),
                               fastloss.cross_entropy(x, y, label_smoothing=0.1, ignore_index=1)[0],
                               rtol=1e-12)
    # backend= passes through
    v2 = flj.cross_entropy(x, y, backend="numba", **opts)
    np.testing.assert_allclose(v2, loss, rtol=1e-12)


def test_from_loss(rng):
    loss_obj = fastloss.SoftmaxFocal(gamma=0.5, reduction="sum")
    f = flj.from_loss(loss_obj)
    x = rng.standard_normal((4, 3))
    y = rng.integers(0, 3, 4)
    loss, grad = loss_obj.loss_grad(x, y)
    np.testing.assert_allclose(jax.jit(f)(x, y), loss, rtol=1e-12)
    np.testing.assert_allclose(jax.grad(f)(x, y), grad, rtol=1e-12)
    with pytest.raises(TypeError, match="fastloss loss object"):
        flj.from_loss(lambda x: x)


# -- finite differences, vmap, dtypes, errors ---------------------------------------------------
@pytest.mark.parametrize("f, make", [
    (lambda x: flj.cross_entropy(x, jnp.array([0, 2, 1]), label_smoothing=0.1),
     lambda r: r.standard_normal((3, 4))),
    (lambda x: flj.sigmoid_focal_loss(x, jnp.array([1.0, 0.0, 1.0, 0.3]), gamma=1.5),
     lambda r: r.standard_normal(4)),
    (lambda x: flj.ctc_loss(x, jnp.array([[1, 2], [3, 3]]), jnp.array([5, 6]),
                            jnp.array([2, 2])), lambda r: r.standard_normal((6, 2, 4))),
])
def test_finite_differences(rng, f, make):
    x = make(rng)
    g = np.asarray(jax.grad(f)(x))
    h = 1e-6
    fd = np.empty_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        fd[i] = (float(f(x + e)) - float(f(x - e))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_vmap_per_example(rng):
    x = rng.standard_normal((3, 4, 5))
    y = rng.integers(0, 5, (3, 4))
    got = jax.vmap(jax.grad(flj.cross_entropy))(x, y)
    for b in range(3):
        np.testing.assert_allclose(got[b], fastloss.cross_entropy(x[b], y[b])[1], rtol=1e-12)


def test_float32_without_x64(rng):
    jax.config.update("jax_enable_x64", False)
    x = jnp.asarray(rng.standard_normal((4, 3)), dtype=jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, 4))  # int32 labels
    v, g = jax.jit(jax.value_and_grad(flj.cross_entropy))(x, y)
    loss, grad = fastloss.cross_entropy(np.asarray(x), np.asarray(y))
    assert v.dtype == g.dtype == jnp.float32
    np.testing.assert_allclose(v, loss, rtol=1e-6)
    np.testing.assert_allclose(g, grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.int32, jnp.complex64])
def test_bad_dtype(dtype):
    x = jnp.ones((3, 4), dtype=dtype)
    y = jnp.array([0, 1, 2])
    with pytest.raises(TypeError, match="input: fastloss.jax takes float32 or float64"):
        flj.cross_entropy(x, y)
    if jnp.issubdtype(dtype, jnp.floating):
        with pytest.raises(TypeError, match="float32 or float64"):
            jax.jit(jax.grad(flj.cross_entropy))(x, y)
    with pytest.raises(TypeError, match="positive: fastloss.jax takes"):
        flj.triplet_margin_loss(jnp.ones((2, 3)), jnp.ones((2, 3), dtype=dtype), jnp.ones((2, 3)))


def test_validation_errors():
    x = jnp.zeros((3, 4))
    bad = jnp.array([0, 7, 1])
    with pytest.raises(ValueError, match="label 7"):  # eager: fastloss's own error
        flj.cross_entropy(x, bad)
    with pytest.raises(Exception, match="label 7"):  # traced: JaxRuntimeError, same message
        jax.jit(jax.grad(flj.cross_entropy))(x, bad).block_until_ready()
    with pytest.raises(ValueError, match="reduction"):  # options: at trace time
        jax.grad(lambda x: flj.cross_entropy(x, jnp.array([0, 1, 2]), reduction="avg"))(x)
    with pytest.raises(TypeError, match="takes 2 positional arrays"):
        flj.cross_entropy(x)
