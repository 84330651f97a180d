"""fastloss.torch: autograd functions and modules, against PyTorch's own losses."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import fastloss  # noqa: E402
import fastloss.torch as ft  # noqa: E402
from fastloss._registry import REGISTRY  # noqa: E402

f64 = torch.float64


def T(a, dtype=f64, grad=False):
    t = torch.as_tensor(np.asarray(a)).to(dtype)
    return t.requires_grad_(grad)


# -- references written with torch ops (autograd is the reference gradient) ------------
def _softmax_focal_ref(x, y, gamma=2.0, weight=None, ignore_index=-100, reduction="mean"):
    logp = x.log_softmax(-1)
    valid = y != ignore_index
    yy = torch.where(valid, y, torch.zeros_like(y))
    lp = logp.gather(-1, yy[..., None])[..., 0]
    w = torch.ones_like(lp) if weight is None else weight[yy]
    w = w * valid
    loss = -w * (1 - lp.exp()) ** gamma * lp
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / w.sum()


def _sigmoid_focal_ref(x, t, alpha=0.25, gamma=2.0, reduction="mean"):
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def _pinball_ref(x, t, quantile=0.5, reduction="mean"):
    d = (t[:, None] if x.ndim == 2 else t) - x
    loss = torch.maximum(quantile * d, (quantile - 1) * d)
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def _contrastive_ref(x1, x2, t, margin=1.0, reduction="mean"):
    d = (x1 - x2).norm(dim=1)
    loss = 0.5 * t * d**2 + 0.5 * (1 - t) * torch.clamp(margin - d, min=0) ** 2
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def _ctc_ref(x, targets, il, tl, from_logits=False, **kw):
    return F.ctc_loss(x.log_softmax(-1) if from_logits else x, targets, il, tl, **kw)


# name -> (make(rng) -> (differentiable tensors, other args), reference, option sets)
def _labels(rng, shape=(6, 5)):
    return (T(rng.standard_normal(shape), grad=True),), (torch.as_tensor(rng.integers(0, shape[-1], shape[:-1])),)


def _probs(rng, shape=(4, 3)):
    return (T(3 * rng.standard_normal(shape), grad=True),), (T(rng.random(shape)),)


def _reg(rng, shape=(4, 3)):
    return (T(2 * rng.standard_normal(shape), grad=True),), (T(2 * rng.standard_normal(shape)),)


def _quant(rng):
    return (T(rng.standard_normal((6, 2)), grad=True),), (T(rng.standard_normal(6)),)


def _seq(rng, shape=(10, 3, 5)):
    x = rng.standard_normal(shape)
    targets = torch.as_tensor(rng.integers(1, shape[2], size=(shape[1], 3)))
    il = torch.as_tensor(rng.integers(shape[0] // 2 + 2, shape[0] + 1, size=shape[1]))
    tl = torch.as_tensor([3, 1, 2][: shape[1]])
    return (T(x, grad=True),), (targets, il, tl)


def _log_seq(rng):
    (x,), rest = _seq(rng)
    return (x.detach().log_softmax(-1).requires_grad_(True),), rest


def _triplet(rng):
    a = rng.standard_normal((5, 4))
    return (T(a, grad=True), T(a + 0.5 * rng.standard_normal((5, 4)), grad=True),
            T(a + rng.standard_normal((5, 4)), grad=True)), ()


def _rank(rng):
    return (T(rng.standard_normal(6), grad=True), T(rng.standard_normal(6), grad=True)), \
        (T(rng.choice([-1.0, 1.0], 6)),)


def _pairs(rng):
    x1 = rng.standard_normal((5, 4))
    return (T(x1, grad=True), T(x1 + rng.standard_normal((5, 4)), grad=True)), \
        (T(rng.random(5)),)


CASES = {
    "cross_entropy": (_labels, F.cross_entropy,
                      [{}, {"label_smoothing": 0.1}, {"ignore_index": 1},
                       {"weight": T([0.5, 2.0, 1.0, 1.5, 0.25])}]),
    "softmax_focal_loss": (_labels, _softmax_focal_ref,
                           [{}, {"gamma": 0.5, "weight": T([0.5, 2.0, 1.0, 1.5, 0.25])},
                            {"gamma": 0.0, "ignore_index": 1}]),
    "binary_cross_entropy_with_logits": (_probs, F.binary_cross_entropy_with_logits,
                                         [{}, {"pos_weight": T([3.0, 1.0, 0.5])},
                                          {"weight": T([0.5])}]),
    "sigmoid_focal_loss": (_probs, _sigmoid_focal_ref,
                           [{}, {"alpha": -1.0, "gamma": 0.5}, {"gamma": 0.0}]),
    "huber_loss": (_reg, F.huber_loss, [{}, {"delta": 0.5}]),
    "smooth_l1_loss": (_reg, F.smooth_l1_loss, [{}, {"beta": 0.5}, {"beta": 0.0}]),
    "mse_loss": (_reg, F.mse_loss, [{}]),
    "l1_loss": (_reg, F.l1_loss, [{}]),
    "pinball_loss": (_quant, _pinball_ref, [{}, {"quantile": 0.9}]),
    "ctc_loss": (_seq, _ctc_ref, [{"from_logits": True},
                                  {"from_logits": True, "zero_infinity": True}]),
    "triplet_margin_loss": (_triplet, F.triplet_margin_loss,
                            [{}, {"swap": True, "margin": 2.0}, {"p": 1.0}]),
    "margin_ranking_loss": (_rank, F.margin_ranking_loss, [{}, {"margin": 0.5}]),
    "contrastive_loss": (_pairs, _contrastive_ref, [{}, {"margin": 3.0}]),
}
PARAMS = [(name, i) for name, (_, _, opts) in CASES.items() for i in range(len(opts))]
REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_every_loss_is_covered():
    assert set(REGISTRY) == set(CASES)
    for name in REGISTRY:
        assert callable(getattr(ft, name))


def _grads(loss, inputs, grad_output):
    return torch.autograd.grad(loss, inputs, grad_output)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,i", PARAMS)
def test_values_and_grads_match_torch(name, i, reduction, rng):
    make, ref, opts = CASES[name]
    diff, rest = make(rng)
    kw = dict(opts[i], reduction=reduction)
    ours = getattr(ft, name)(*diff, *rest, **kw)
    theirs = ref(*diff, *rest, **kw)
    assert ours.dtype == f64 and ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    go = torch.as_tensor(0.7 if reduction != "none" else rng.standard_normal(theirs.shape))
    for a, b in zip(_grads(ours, diff, go), _grads(theirs, diff, go)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name,i", PARAMS)
def test_gradcheck(name, i, reduction, rng):
    make, _, opts = CASES[name]
    diff, rest = make(rng)
    fn = getattr(ft, name)
    kw = dict(opts[i], reduction=reduction)
    assert torch.autograd.gradcheck(lambda *d: fn(*d, *rest, **kw), diff)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_ctc_log_probs_is_drop_in(reduction, batch_first, rng):
    """ctc_loss(log_probs, ...) with torch's signature: equal values, and equal
    gradients w.r.t. the logits once the chain goes through log_softmax."""
    (x,), (targets, il, tl) = _seq(rng)
    if batch_first:
        x = x.detach().transpose(0, 1).contiguous().requires_grad_(True)
    ours = ft.ctc_loss(x.log_softmax(-1), targets, il, tl, 0, reduction, batch_first=batch_first)
    xt = x.transpose(0, 1) if batch_first else x
    theirs = F.ctc_loss(xt.log_softmax(-1), targets, il, tl, reduction=reduction)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    go = torch.as_tensor(0.7 if reduction != "none" else rng.standard_normal(theirs.shape))
    torch.testing.assert_close(_grads(ours, x, go)[0], _grads(theirs, x, go)[0],
                               rtol=1e-9, atol=1e-12)
    # gradcheck on log-probabilities: fastloss's gradient is the true derivative.
    (lp,), rest = _log_seq(rng)
    if batch_first:
        lp = lp.detach().transpose(0, 1).contiguous().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a: ft.ctc_loss(a, *rest, reduction=reduction, batch_first=batch_first), (lp,))
    # lengths as tuples of ints, like torch accepts
    torch.testing.assert_close(
        ft.ctc_loss(x.log_softmax(-1), targets, tuple(il.tolist()), tuple(tl.tolist()),
                    reduction=reduction, batch_first=batch_first), theirs)
    # the fused form, batch_first, against torch
    logit = ft.ctc_loss(x, targets, il, tl, reduction=reduction, from_logits=True,
                        batch_first=batch_first)
    torch.testing.assert_close(logit, theirs, rtol=1e-10, atol=1e-12)


def test_sample_weight(rng):
    (x,), (y,) = _labels(rng)
    w = T(rng.random(6))
    ours = ft.cross_entropy(x, y, sample_weight=w)
    theirs = (F.cross_entropy(x, y, reduction="none") * w).sum() / w.sum()
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(_grads(ours, x, None)[0], _grads(theirs, x, None)[0])
    # a module passes it through forward
    mod = ft.CrossEntropyLoss(T([1.0, 2.0, 1.0, 1.0, 0.5]), reduction="sum")
    torch.testing.assert_close(
        mod(x, y, sample_weight=w),
        (F.cross_entropy(x, y, weight=T([1.0, 2.0, 1.0, 1.0, 0.5]), reduction="none") * w).sum())


def test_modules_match_functions(rng):
    (x,), (y,) = _labels(rng)
    assert torch.equal(ft.CrossEntropyLoss(label_smoothing=0.2)(x, y),
                       ft.cross_entropy(x, y, label_smoothing=0.2))
    (x, x2), (t,) = _rank(rng)
    assert torch.equal(ft.MarginRankingLoss(0.3)(x, x2, t), ft.margin_ranking_loss(x, x2, t, margin=0.3))
    (lp,), rest = _log_seq(rng)
    assert torch.equal(ft.CTCLoss(0, "sum")(lp, *rest), ft.ctc_loss(lp, *rest, reduction="sum"))
    torch.testing.assert_close(ft.CTCLoss(reduction="sum")(lp, *rest),
                               torch.nn.CTCLoss(reduction="sum")(lp, *rest))
    assert "label_smoothing=0.2" in repr(ft.CrossEntropyLoss(label_smoothing=0.2))
    for name in ["CrossEntropyLoss", "BCEWithLogitsLoss", "HuberLoss", "SmoothL1Loss", "MSELoss",
                 "L1Loss", "CTCLoss", "TripletMarginLoss", "MarginRankingLoss",
                 "SoftmaxFocalLoss", "SigmoidFocalLoss", "PinballLoss", "ContrastiveLoss"]:
        assert issubclass(getattr(ft, name), torch.nn.Module)
    with pytest.raises(TypeError, match="positional"):
        ft.MSELoss("sum")
    with pytest.raises(ValueError, match="reduction"):
        ft.MSELoss(reduction="avg")(x, x2)


def test_requires_grad_per_input(rng):
    (a, p, n), _ = _triplet(rng)
    a.requires_grad_(False)
    n.requires_grad_(False)
    ours = ft.triplet_margin_loss(a, p, n)
    ours.backward()
    assert a.grad is None and n.grad is None
    p2 = p.detach().requires_grad_()
    F.triplet_margin_loss(a, p2, n).backward()
    torch.testing.assert_close(p.grad, p2.grad)
    # nothing requires grad: no graph
    out = ft.triplet_margin_loss(a, p.detach(), n)
    assert not out.requires_grad and out.grad_fn is None
    with torch.no_grad():
        out = ft.triplet_margin_loss(a, p, n)
    assert not out.requires_grad
    torch.testing.assert_close(out, ours.detach())


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"])
def test_regression_target_is_differentiable(name, rng):
    (x,), (t,) = _reg(rng)
    t.requires_grad_(True)
    go = torch.as_tensor(rng.standard_normal(x.shape))
    ours = getattr(ft, name)(x, t, reduction="none")
    theirs = getattr(F, name)(x, t, reduction="none")
    for a, b in zip(_grads(ours, (x, t), go), _grads(theirs, (x, t), go)):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(lambda a, b: getattr(ft, name)(a, b), (x, t))
    # only the target
    x.requires_grad_(False)
    (g,) = _grads(getattr(ft, name)(x, t), (t,), None)
    torch.testing.assert_close(g, _grads(getattr(F, name)(x, t), (t,), None)[0])


def test_target_that_requires_grad_is_refused(rng):
    (x,), (t,) = _probs(rng)
    t.requires_grad_(True)
    with pytest.raises(ValueError, match="target.*detach"):
        ft.binary_cross_entropy_with_logits(x, t)
    with pytest.raises(ValueError, match="sample_weight"):
        ft.binary_cross_entropy_with_logits(x, t.detach(), sample_weight=T(np.ones(4), grad=True))
    ft.binary_cross_entropy_with_logits(x, t.detach())  # fine once detached


def test_errors_device_and_dtype(rng):
    x = torch.empty((3, 4), device="meta")
    y = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="input: .*CPU tensors only.*meta"):
        ft.cross_entropy(x, y)
    with pytest.raises(ValueError, match="target: .*CPU"):
        ft.mse_loss(torch.zeros(3), torch.empty(3, device="meta"))
    for dtype in (torch.float16, torch.bfloat16, torch.int64, torch.complex64):
        with pytest.raises(TypeError, match=f"input: .*float32 or float64.*{dtype}"):
            ft.cross_entropy(torch.zeros((3, 4), dtype=dtype), y)
    with pytest.raises(TypeError, match="x2: expected torch.float64"):
        ft.contrastive_loss(T(np.ones((2, 3))), T(np.ones((2, 3)), torch.float32), T(np.ones(2)))
    with pytest.raises(TypeError, match="input: expected a torch.Tensor"):
        ft.mse_loss(np.zeros(3), torch.zeros(3))
    with pytest.raises(TypeError, match="dense"):
        ft.mse_loss(torch.zeros(3).to_sparse(), torch.zeros(3))
    # fastloss's own validation errors come through
    with pytest.raises(ValueError, match="target"):
        ft.cross_entropy(T(np.zeros((3, 4))), torch.tensor([0, 1, 7]))


@pytest.mark.parametrize("backend", fastloss.BACKENDS)
def test_backend_option(backend, rng):
    (x,), (y,) = _labels(rng)
    ours = ft.CrossEntropyLoss(backend=backend)(x, y)
    torch.testing.assert_close(ours, F.cross_entropy(x, y))
    torch.testing.assert_close(_grads(ours, x, None)[0], _grads(F.cross_entropy(x, y), x, None)[0])


def test_float32(rng):
    x = torch.tensor(rng.standard_normal((8, 6)), dtype=torch.float32, requires_grad=True)
    y = torch.as_tensor(rng.integers(0, 6, 8))
    ours = ft.cross_entropy(x, y)
    assert ours.dtype == torch.float32
    (g,) = _grads(ours, x, None)
    assert g.dtype == torch.float32
    theirs = F.cross_entropy(x, y)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(g, _grads(theirs, x, None)[0])


def test_no_copy_and_layouts(rng):
    x = torch.tensor(rng.standard_normal((6, 5)), requires_grad=True)
    view = ft._input_numpy(x, "input")
    assert view.ctypes.data == x.data_ptr() and np.shares_memory(view, x.detach().numpy())
    y = torch.as_tensor(rng.integers(0, 5, 6))
    assert ft._aux_numpy(y, "target").ctypes.data == y.data_ptr()
    loss = ft.cross_entropy(x, y)
    saved = loss.grad_fn.grads[0]  # the gradient fastloss wrote, as a tensor sharing memory
    _, g = fastloss.cross_entropy(x.detach().numpy(), y.numpy())
    assert torch.equal(saved, torch.from_numpy(g))
    # backward returns grad_output * saved: a second backward sees the same gradient
    x.grad = None
    loss.backward(torch.tensor(2.0), retain_graph=True)
    first = x.grad.clone()
    x.grad = None
    loss.backward(torch.tensor(2.0))
    assert torch.equal(x.grad, first) and torch.equal(first, 2 * saved)
    # non-contiguous input and a lazily negated one
    xt = torch.tensor(rng.standard_normal((5, 6)), requires_grad=True)
    for inp in (xt.t(), -xt.t()):
        torch.testing.assert_close(ft.cross_entropy(inp, y), F.cross_entropy(inp, y))
        torch.testing.assert_close(_grads(ft.cross_entropy(inp, y), xt, None)[0],
                                   _grads(F.cross_entropy(inp, y), xt, None)[0])


def test_class_axis_is_last(rng):
    x = T(rng.standard_normal((2, 3, 5)), grad=True)  # (N, d, C)
    y = torch.as_tensor(rng.integers(0, 5, (2, 3)))
    torch.testing.assert_close(ft.cross_entropy(x, y), F.cross_entropy(x.movedim(-1, 1), y))


def test_empty_mean_is_zero_not_nan():
    x = T(np.zeros((2, 3)), grad=True)
    y = torch.tensor([-100, -100])
    loss = ft.cross_entropy(x, y)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))
    assert torch.isnan(F.cross_entropy(x, y))  # PyTorch's documented difference


def test_mlp_training_matches_torch():
    torch.manual_seed(0)
    gen = np.random.default_rng(3)
    X = T(gen.standard_normal((64, 10)))
    y = torch.as_tensor(gen.integers(0, 5, 64))
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(),
                                torch.nn.Linear(32, 5)).double()
    twin = copy.deepcopy(model)
    runs = []
    for m, loss_fn in ((model, ft.cross_entropy), (twin, F.cross_entropy)):
        opt = torch.optim.SGD(m.parameters(), lr=0.5)
        losses = []
        for _ in range(20):
            opt.zero_grad()
            loss = loss_fn(m(X), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append(np.array(losses))
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)
    assert runs[0][-1] < 0.8 * runs[0][0]
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("from_logits", [True, False])
def test_ctc_training_matches_torch(from_logits):
    torch.manual_seed(1)
    gen = np.random.default_rng(4)
    n_frames, n, feat, n_classes = 12, 4, 8, 6
    X = T(gen.standard_normal((n_frames, n, feat)))
    targets = torch.as_tensor(gen.integers(1, n_classes, (n, 4)))
    il = torch.tensor([12, 11, 10, 12])
    tl = torch.tensor([4, 3, 2, 1])
    model = torch.nn.Linear(feat, n_classes).double()
    twin = copy.deepcopy(model)

    def ours(out):
        if from_logits:
            return ft.ctc_loss(out, targets, il, tl, from_logits=True)
        return ft.ctc_loss(out.log_softmax(-1), targets, il, tl)

    def theirs(out):
        return F.ctc_loss(out.log_softmax(-1), targets, il, tl)

    runs = []
    for m, loss_fn in ((model, ours), (twin, theirs)):
        opt = torch.optim.SGD(m.parameters(), lr=0.3)
        losses = []
        for _ in range(20):
            opt.zero_grad()
            loss = loss_fn(m(X))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append(np.array(losses))
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)
    assert runs[0][-1] < runs[0][0]
