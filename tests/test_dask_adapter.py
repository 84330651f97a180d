"""fastloss.dask: chunked losses equal one NumPy call on the whole array."""
import os

import numpy as np
import pytest

import fastloss

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
fd = pytest.importorskip("fastloss.dask")

CHUNKS = (7, 1, 12, 20)  # uneven, one of a single row: N = 40


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # Worker processes inherit the environment: they must import this fastloss.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, memory_limit="1GiB",
    )
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()
        if path:
            os.environ["PYTHONPATH"] = path
        else:
            os.environ.pop("PYTHONPATH", None)


def _compute(scheduler, *objs):
    return dask.compute(*objs, scheduler=scheduler)


def _cases(rng, dtype):
    """(name, loss, input, target, sample_weight); target spreads registry-style."""
    n = sum(CHUNKS)
    x5 = rng.standard_normal((n, 5)).astype(dtype)
    y = rng.integers(0, 5, n)
    y[::6] = 2  # ignored
    sw = rng.random(n)
    reg = (2 * rng.standard_normal((n, 3, 2))).astype(dtype)
    q = rng.standard_normal((n, 3)).astype(dtype)
    a = rng.standard_normal((n, 4)).astype(dtype)
    return [
        ("ce", fastloss.CrossEntropy(weight=np.array([0.5, 2.0, 1.0, 1.5, 0.25]),
                                     ignore_index=2, label_smoothing=0.1), x5, y, sw),
        ("ce_soft", fastloss.CrossEntropy(), x5, rng.dirichlet(np.ones(5), n), sw),
        ("focal", fastloss.SoftmaxFocal(weight=np.arange(1.0, 6.0), ignore_index=2), x5, y, None),
        ("bce", fastloss.BCEWithLogits(pos_weight=np.array([3.0, 1.0, 0.5, 2.0, 1.0])),
         3 * x5, rng.random((n, 5)), sw),
        ("huber", fastloss.Huber(delta=0.5), reg, 2 * rng.standard_normal(reg.shape), sw),
        ("pinball", fastloss.Pinball(quantile=np.array([0.1, 0.5, 0.9])), q,
         rng.standard_normal(n), sw),
        ("triplet", fastloss.TripletMargin(margin=1.5),
         a, ((a + 0.5 * rng.standard_normal(a.shape)).astype(dtype),
             (a + rng.standard_normal(a.shape)).astype(dtype)), sw),
        ("ranking", fastloss.MarginRanking(margin=0.3), q[:, 0],
         (q[:, 1], rng.choice([-1.0, 1.0], n)), sw),
    ]


def _numpy(loss, x, target, sw, reduction):
    loss = type(loss)(**{k: getattr(loss, k) for k in loss._options}, reduction=reduction)
    rest = target if isinstance(target, tuple) else (target,)
    return loss.loss_grad(x, *rest, sample_weight=sw), loss


def _check(got, want, dtype):
    tol = _tol(dtype)
    assert got.dtype == np.asarray(want).dtype
    np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_equals_one_numpy_call(rng, dtype, reduction):
    for name, loss0, x, target, sw in _cases(rng, dtype):
        (want, want_g), loss = _numpy(loss0, x, target, sw, reduction)
        dx = da.from_array(x, chunks=(CHUNKS,) + x.shape[1:])
        got, got_g = fd.loss_grad(loss, dx, target, sample_weight=sw)
        assert isinstance(got, da.Array)
        got, got_g = _compute("threads", got, got_g)
        _check(got, want, dtype)
        if reduction != "none":
            assert got.shape == ()
        grads = got_g if isinstance(got_g, tuple) else (got_g,)
        wants = want_g if isinstance(want_g, tuple) else (want_g,)
        for g, w in zip(grads, wants):
            _check(g, w, dtype)
        only = fd.loss(loss, dx, target, sample_weight=sw).compute(scheduler="threads")
        _check(only, want, dtype)


def test_grad_keeps_the_input_chunks(rng):
    _, loss, x, target, sw = _cases(rng, np.float64)[0]
    dx = da.from_array(x, chunks=(CHUNKS, 5))
    value, grad = fd.loss_grad(loss, dx, target, sample_weight=sw)
    assert grad.chunks == dx.chunks and grad.dtype == np.float64
    none, _ = fd.loss_grad(fastloss.CrossEntropy(reduction="none"), dx, target)
    assert none.chunks == (CHUNKS,)
    _, triplet, a, (p, n), _ = _cases(rng, np.float32)[6]
    _, grads = fd.loss_grad(triplet, da.from_array(a, chunks=(CHUNKS, 4)), (p, n))
    assert [g.chunks for g in grads] == [(CHUNKS, (4,))] * 3
    assert all(g.dtype == np.float32 for g in grads)


def test_other_axes_are_rechunked_and_dask_targets_aligned(rng):
    _, loss, x, y, sw = _cases(rng, np.float64)[0]
    (want, want_g), _ = _numpy(loss, x, y, sw, "mean")
    dx = da.from_array(x, chunks=((10, 30), (2, 3)))  # the class axis in two chunks
    dy = da.from_array(y, chunks=13)  # chunked differently from the input
    dsw = da.from_array(sw, chunks=((40,),))
    value, grad = fd.loss_grad(loss, dx, dy, sample_weight=dsw)
    assert grad.chunks == ((10, 30), (5,))
    value, grad = _compute("threads", value, grad)
    _check(value, want, np.float64)
    _check(grad, want_g, np.float64)


@pytest.mark.parametrize("batch_first", [False, True])
def test_ctc(rng, batch_first):
    t, n, c = 10, sum(CHUNKS), 5
    x = rng.standard_normal((t, n, c))
    targets = rng.integers(1, c, (n, 3))
    in_len = rng.integers(6, t + 1, n)
    tgt_len = rng.integers(0, 4, n)
    sw = rng.random(n)
    if batch_first:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
        chunks = (CHUNKS, t, c)
    else:
        chunks = (4, CHUNKS, c)  # the time axis is rechunked to one chunk
    for reduction in ("mean", "sum", "none"):
        loss = fastloss.CTC(batch_first=batch_first, reduction=reduction)
        want, want_g = loss.loss_grad(x, targets, in_len, tgt_len, sample_weight=sw)
        got, got_g = fd.loss_grad(loss, da.from_array(x, chunks=chunks),
                                  (targets, in_len, tgt_len), sample_weight=sw)
        got, got_g = _compute("threads", got, got_g)
        _check(got, want, np.float64)
        _check(got_g, want_g, np.float64)


def test_weights_cancelling_across_chunks(rng):
    # chunk 1 sums to 0 on its own, the total does not; a total of 0 gives 0.0.
    x = rng.standard_normal((6, 3))
    y = np.array([0, 1, 2, 0, 1, 2])
    loss = fastloss.CrossEntropy()
    dx = da.from_array(x, chunks=((2, 4), 3))
    for sw in (np.array([1.0, -1.0, 0.5, 2.0, 1.0, 1.0]), np.array([1.0, -1.0, 2, -2, 0, 0])):
        want, want_g = loss.loss_grad(x, y, sample_weight=sw)
        got, got_g = _compute("threads", *fd.loss_grad(loss, dx, y, sample_weight=sw))
        _check(got, want, np.float64)
        _check(got_g, want_g, np.float64)


def test_function_and_name_with_options(rng):
    x = rng.standard_normal((40, 3))
    t = rng.standard_normal((40, 3))
    want, want_g = fastloss.huber_loss(x, t, delta=0.3, reduction="sum")
    dx = da.from_array(x, chunks=(CHUNKS, 3))
    for spec in (fastloss.huber_loss, "huber_loss", fastloss.Huber):
        got, got_g = _compute("threads", *fd.loss_grad(spec, dx, t, delta=0.3, reduction="sum"))
        _check(got, want, np.float64)
        _check(got_g, want_g, np.float64)


def test_errors_before_computing(rng):
    x = da.from_array(rng.standard_normal((10, 3)), chunks=(4, 3))
    y = np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match="target: expected 10 rows"):
        fd.loss_grad(fastloss.CrossEntropy(), x, y[:9])
    with pytest.raises(ValueError, match="sample_weight: expected 10 rows"):
        fd.loss(fastloss.CrossEntropy(), x, y, sample_weight=np.ones(3))
    with pytest.raises(TypeError, match="complex"):
        fd.loss_grad(fastloss.CrossEntropy(), x.astype(complex), y)
    with pytest.raises(TypeError, match="options"):
        fd.loss_grad(fastloss.CrossEntropy(), x, y, label_smoothing=0.1)
    with pytest.raises(TypeError, match="loss:"):
        fd.loss_grad(np.sum, x, y)
    with pytest.raises(ValueError, match="padded"):
        fd.loss_grad(fastloss.CTC(), da.zeros((5, 2, 3)), (np.ones(2, int), [5, 5], [1, 1]))
    # Label checks run in the chunk tasks, at compute time.
    bad = y.copy()
    bad[7] = 3
    value, _ = fd.loss_grad(fastloss.CrossEntropy(), x, bad)
    with pytest.raises(ValueError, match="target"):
        value.compute(scheduler="sync")


def test_distributed_local_cluster(client, rng):
    for name, loss0, x, target, sw in _cases(rng, np.float64):
        if name not in ("ce", "bce", "triplet"):
            continue
        for reduction in ("mean", "none"):
            (want, want_g), loss = _numpy(loss0, x, target, sw, reduction)
            dx = da.from_array(x, chunks=(CHUNKS,) + x.shape[1:])
            got, got_g = client.compute(list(fd.loss_grad(loss, dx, target, sample_weight=sw)),
                                        sync=True)
            _check(got, want, np.float64)
            for g, w in zip(got_g if isinstance(got_g, tuple) else (got_g,),
                            want_g if isinstance(want_g, tuple) else (want_g,)):
                _check(g, w, np.float64)
    # CTC, and the loss only, with a fastloss thread count per task
    x = rng.standard_normal((8, 40, 4))
    lengths = (rng.integers(1, 4, (40, 2)), np.full(40, 8), rng.integers(0, 3, 40))
    want = fastloss.CTC().loss(x, *lengths)
    got = client.compute(fd.loss(fastloss.CTC(), da.from_array(x, chunks=(8, CHUNKS, 4)),
                                 lengths, num_threads=1), sync=True)
    _check(got, want, np.float64)


def test_every_backend(rng, backend):
    n = sum(CHUNKS)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = rng.integers(0, 4, n)
    loss = fastloss.CrossEntropy(weight=np.array([1.0, 2.0, 0.5, 1.0]), backend=backend)
    want, want_g = loss.loss_grad(x, y)
    got, got_g = _compute("threads", *fd.loss_grad(loss, da.from_array(x, chunks=(CHUNKS, 4)), y,
                                                   num_threads=1))
    _check(got, want, np.float32)
    _check(got_g, want_g, np.float32)
