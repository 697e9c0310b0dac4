"""The optimizers of bssvae.optim: Adam (every profile's) and Muon on the hidden matrices with Adam on the rest."""
import pytest
import torch

from bssvae.cli import build_parser
from bssvae.config import ModelConfig, TrainConfig, make_config
from bssvae.errors import BssvaeError
from bssvae.model import VAEBSS
from bssvae.optim import MuonAdam, hidden_matrices, make_optimizer, muon_matrices, newton_schulz_flops
from bssvae.train import load_model, train, train_step
from bssvae.train import make_optimizer as run_optimizer

SMALL = dict(max_train_images=2048, n_test=200)


def _model(n_sources=2):
    return VAEBSS(ModelConfig(n_sources=n_sources))


def test_muon_takes_the_hidden_matrices_and_adam_everything_else():
    """Table I's MNIST network: 4 encoder matrices between hidden layers (700-600-500-400-300) and 5 in the
    decoder (20-300-...-700); the encoder's first layer (784 inputs), the head and the decoder's last
    layer (784 outputs) go to Adam with every bias and BatchNorm parameter, each parameter exactly once."""
    model = _model()
    shapes = [tuple(p.shape) for p in hidden_matrices(model)]
    assert shapes == [(600, 700), (500, 600), (400, 500), (300, 400),
                      (300, 20), (400, 300), (500, 400), (600, 500), (700, 600)]
    opt = MuonAdam(model, lr=1e-3)
    muon = [p for g in opt.muon.param_groups for p in g["params"]]
    adam = [p for g in opt.adam.param_groups for p in g["params"]]
    assert {id(p) for p in muon} == {id(p) for p in hidden_matrices(model)}
    assert len(muon) + len(adam) == len(list(model.parameters()))
    assert {id(p) for p in muon} | {id(p) for p in adam} == {id(p) for p in model.parameters()}
    outer = {id(model.encoder[0].weight), id(model.head.weight), id(model.decoder[-2].weight)}
    assert outer <= {id(p) for p in adam} and all(p.ndim == 2 for p in muon)
    assert isinstance(make_optimizer(model, "adam", 1e-3), torch.optim.Adam)


def test_adam_arguments_reach_adam_alone_and_beside_muon():
    """``adam_kwargs`` (the benchmark's unfused variants) build Adam with them, also the Adam beside Muon."""
    model = _model()
    assert make_optimizer(model, "adam", 1e-3, adam_kwargs={"fused": False}).defaults["fused"] is False
    both = make_optimizer(model, "muon", 1e-3, adam_kwargs={"fused": False})
    assert isinstance(both, MuonAdam) and both.defaults["fused"] is False
    assert both.muon.defaults["ns_steps"] == 5


def test_newton_schulz_flops_count_each_iterations_three_products():
    """One 600 x 700 matrix: 5 iterations of X X^T (2 * 600^2 * 700), a 600 x 600 product (2 * 600^3) and one
    back onto X (2 * 600^2 * 700); Table I's nine hidden matrices cost about twice the training step's own products
    at batch 512 (27.7 MFLOP per mixture, bench/flops.py)."""
    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Sequential(torch.nn.Linear(4, 700), torch.nn.Linear(700, 600))
            self.head = torch.nn.Linear(600, 8)
            self.decoder = torch.nn.Sequential(torch.nn.Linear(2, 4))

    assert [tuple(p.shape) for p in hidden_matrices(One())] == [(600, 700)]
    assert newton_schulz_flops(One()) == 5 * (2 * 600**2 * 700 + 2 * 600**3 + 2 * 600**2 * 700)
    assert newton_schulz_flops(One(), ns_steps=1) == newton_schulz_flops(One()) // 5
    assert 2.0 < newton_schulz_flops(_model()) / (27_716_800 * 512) < 2.2


def test_muon_layers_all_gives_muon_every_linear_weight_and_ns_steps_its_iterations():
    """``muon_layers="all"``: the nine hidden matrices plus the encoder's first layer, the head and the decoder's
    last layer, Adam keeping only biases and BatchNorm; ``ns_steps`` reaches torch.optim.Muon, and the count of
    Newton-Schulz FLOPs follows both."""
    model = _model()
    every = [tuple(p.shape) for p in muon_matrices(model, "all")]
    assert every == [(700, 784), (600, 700), (500, 600), (400, 500), (300, 400), (80, 300),
                     (300, 20), (400, 300), (500, 400), (600, 500), (700, 600), (784, 700)]
    assert muon_matrices(model, "hidden") == hidden_matrices(model)
    opt = MuonAdam(model, lr=1e-3, layers="all", ns_steps=3)
    assert opt.muon.defaults["ns_steps"] == 3
    adam = [p for g in opt.adam.param_groups for p in g["params"]]
    assert adam and all(p.ndim == 1 for p in adam)
    assert len(adam) + len(every) == len(list(model.parameters()))
    outer = 2 * 5 * (4 * 700**2 * 784 + 2 * 700**3) + 5 * (4 * 80**2 * 300 + 2 * 80**3)
    assert newton_schulz_flops(model, layers="all") == newton_schulz_flops(model) + outer
    assert newton_schulz_flops(model, ns_steps=3, layers="all") * 5 == newton_schulz_flops(model, layers="all") * 3
    with pytest.raises(BssvaeError, match="muon_layers: expected one of"):
        muon_matrices(model, "outer")
    config = make_config("smoke", optimizer="muon", muon_layers="all", muon_ns_steps=3)
    built = run_optimizer(model, config)
    assert built.muon.defaults["ns_steps"] == 3 and len(built.muon.param_groups[0]["params"]) == 12


def test_one_learning_rate_drives_both_and_a_step_moves_every_parameter():
    model = _model()
    opt = MuonAdam(model, lr=1e-3)
    for group in opt.param_groups:  # what bssvae.train.train_step does at every step
        group["lr"] = 5e-4
    assert opt.muon.param_groups[0]["lr"] == opt.adam.param_groups[0]["lr"] == 5e-4
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.rand(16, 784) / 2
    opt.zero_grad(set_to_none=True)
    out = model(x)
    (out.x_hat - x).abs().sum().backward()
    opt.step()
    moved = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert all(moved)
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in model.parameters())


def _one_step(x: torch.Tensor, **settings):
    """A smoke Muon run with ``settings`` (constant learning rate), its model built from seed 0, after one step of
    :func:`bssvae.train.train_step` on ``x``: the model, its optimizer, its parameters before and after the step, the
    rate the step returned, and the positions among ``model.parameters()`` of the matrices Muon updates."""
    config = make_config("smoke", optimizer="muon", lr_schedule="constant", **settings)
    torch.manual_seed(0)
    model = _model()
    opt = run_optimizer(model, config)
    before = [p.detach().clone() for p in model.parameters()]
    _, _, lr = train_step(model, opt, x, config, step=0, steps_per_epoch=10)
    after = [p.detach().clone() for p in model.parameters()]
    muon = {i for i, p in enumerate(model.parameters()) if any(p is q for q in hidden_matrices(model))}
    assert len(muon) == 9
    return model, opt, before, after, lr, muon


def test_muon_lr_scale_gives_muon_that_multiple_of_adams_rate_at_every_step():
    """``muon_lr_scale`` = 2: after a step of :func:`bssvae.train.train_step` Muon's group holds twice the run's
    learning rate and Adam's the run's; from the same weights and batch, the Muon matrices move twice as far as with
    one learning rate for both and every other parameter the same; the scale survives a checkpoint's state."""
    x = torch.rand(64, 784) / 2
    moves = []
    for scale in (1.0, 2.0):
        model, opt, before, after, lr, muon = _one_step(x, lr=1e-3, muon_lr_scale=scale)
        assert lr == 1e-3 and opt.adam.param_groups[0]["lr"] == 1e-3
        assert opt.muon.param_groups[0]["lr"] == pytest.approx(scale * 1e-3, rel=1e-12)
        moves.append([a - b for a, b in zip(after, before)])
    for i, (one, two) in enumerate(zip(*moves)):
        torch.testing.assert_close(two, 2 * one if i in muon else one, rtol=1e-3, atol=1e-7)
    fresh = MuonAdam(model, lr=1e-3)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.muon.param_groups[0]["lr_scale"] == 2.0


def test_muon_weight_decay_shrinks_muons_matrices_by_muons_rate_times_it_and_nothing_else():
    """``muon_weight_decay`` = 0.5 with Muon's rate twice Adam's: from the same weights and batch, a step of
    :func:`bssvae.train.train_step` leaves each Muon matrix ``Muon's lr x 0.5`` times its old value below where the
    step without decay leaves it (decoupled: the update itself is the same), and every other parameter where it was;
    the decay survives a checkpoint's state."""
    x = torch.rand(64, 784) / 2
    afters = []
    for decay in (0.0, 0.5):
        model, opt, before, after, _, muon = _one_step(x, lr=1e-2, muon_lr_scale=2.0, muon_weight_decay=decay)
        afters.append(after)
        assert opt.muon.param_groups[0]["weight_decay"] == decay
        assert all(g["weight_decay"] == 0 for g in opt.adam.param_groups)
    for i, (plain, decayed) in enumerate(zip(*afters)):  # both steps started from the same seeded weights: ``before``
        shrink = 2e-2 * 0.5 * before[i] if i in muon else torch.zeros_like(plain)
        torch.testing.assert_close(plain - decayed, shrink, rtol=1e-4, atol=1e-8)
        assert i not in muon or shrink.abs().max() > 1e-5  # the decay is there to see
    fresh = MuonAdam(model, lr=1e-3)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.muon.param_groups[0]["weight_decay"] == 0.5


def test_a_model_without_the_parts_muon_needs_is_refused():
    with pytest.raises(BssvaeError, match="optimizer 'muon'.*encoder, head and decoder"):
        MuonAdam(torch.nn.Linear(4, 4), lr=1e-3)
    with pytest.raises(BssvaeError, match="optimizer: expected one of"):
        make_optimizer(_model(), "sgd", 1e-3)


def test_the_config_names_its_optimizer_and_refuses_others():
    assert TrainConfig().optimizer == "adam"
    # every profile trains with the authors' Adam, but the cpu profile's VAE in bf16 (VAE_RECIPES)
    assert make_config("cpu", precision="fp32").optimizer == "adam"
    assert make_config("cpu", precision="bf16").optimizer == "muon"
    assert make_config("paper").optimizer == "adam" and make_config("authors").optimizer == "adam"
    assert make_config("smoke", optimizer="muon").optimizer == "muon"
    with pytest.raises(BssvaeError, match="optimizer"):
        make_config("smoke", optimizer="sgd")
    # a run directory from before the option has no 'optimizer' key: it is an Adam run
    d = make_config("smoke").to_dict()
    del d["optimizer"]
    assert TrainConfig.from_dict(d).optimizer == "adam"
    args = build_parser().parse_args(["train", "--profile", "smoke", "--optimizer", "muon"])
    assert args.optimizer == "muon"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--optimizer", "sgd"])


def test_the_config_checks_muons_settings_and_keeps_them_to_muon_runs():
    """Runs from before the options read as Muon on the hidden matrices with 5 iterations, momentum 0.95, one rate for
    both and no decay; a Muon setting on an Adam run, an unknown layer set, an iteration count torch.optim.Muon refuses,
    a momentum outside [0, 1), a scale of Muon's learning rate that is not a positive number or a weight decay that is not a finite
    non-negative number is an error naming it (every setting set on an Adam run named, each at the start)."""
    d = make_config("smoke", optimizer="muon").to_dict()
    del d["muon_layers"], d["muon_ns_steps"], d["muon_momentum"], d["muon_lr_scale"], d["muon_weight_decay"]
    old = TrainConfig.from_dict(d)
    assert (old.muon_layers, old.muon_ns_steps, old.muon_momentum, old.muon_lr_scale,
            old.muon_weight_decay) == ("hidden", 5, 0.95, 1.0, 0.0)
    for bad, match in ((dict(optimizer="muon", muon_layers="outer"), "muon_layers: expected one of"),
                       (dict(optimizer="muon", muon_ns_steps=0), "muon_ns_steps"),
                       (dict(optimizer="muon", muon_ns_steps=100), "muon_ns_steps: expected at most 99"),
                       (dict(optimizer="muon", muon_ns_steps=2.5), "muon_ns_steps: expected an integer"),
                       (dict(muon_layers="all"), "^muon_layers: settings of optimizer 'muon'.*'adam'"),
                       (dict(muon_ns_steps=3), "^muon_ns_steps: settings of optimizer 'muon'.*'adam'"),
                       (dict(optimizer="muon", muon_momentum=1.0), r"muon_momentum: expected a number in \[0, 1\)"),
                       (dict(optimizer="muon", muon_momentum=-0.1), "muon_momentum"),
                       (dict(optimizer="muon", muon_momentum="0.9"), "muon_momentum"),
                       (dict(muon_momentum=0.9), "^muon_momentum: settings of optimizer 'muon'.*'adam'"),
                       (dict(optimizer="muon", muon_lr_scale=0), "muon_lr_scale: expected a positive multiple of lr"),
                       (dict(optimizer="muon", muon_lr_scale=-1.0), "muon_lr_scale"),
                       (dict(optimizer="muon", muon_lr_scale=float("inf")), "muon_lr_scale"),
                       (dict(optimizer="muon", muon_lr_scale="2"), "muon_lr_scale"),
                       (dict(muon_lr_scale=2.0), "^muon_lr_scale: settings of optimizer 'muon'.*'adam'"),
                       (dict(optimizer="muon", muon_weight_decay=-0.1),
                        "muon_weight_decay: expected a finite non-negative number"),
                       (dict(optimizer="muon", muon_weight_decay=float("nan")), "muon_weight_decay"),
                       (dict(optimizer="muon", muon_weight_decay="0.1"), "muon_weight_decay"),
                       (dict(muon_weight_decay=0.1), "^muon_weight_decay: settings of optimizer 'muon'.*'adam'"),
                       (dict(muon_lr_scale=2.0, muon_weight_decay=0.1),
                        "^muon_lr_scale, muon_weight_decay: settings of optimizer 'muon'.*'adam'")):
        with pytest.raises(BssvaeError, match=match):
            make_config("smoke", **bad)
    from bssvae.cli import _config_from

    args = build_parser().parse_args(["train", "--profile", "smoke", "--optimizer", "muon", "--muon-layers", "all",
                                      "--muon-ns-steps", "3", "--muon-momentum", "0.9", "--muon-lr-scale", "2",
                                      "--muon-weight-decay", "0.1"])
    config = _config_from(args)
    assert (config.optimizer, config.muon_layers, config.muon_ns_steps, config.muon_momentum,
            config.muon_lr_scale, config.muon_weight_decay) == ("muon", "all", 3, 0.9, 2.0, 0.1)
    assert run_optimizer(_model(), config).muon.defaults["weight_decay"] == 0.1
    assert run_optimizer(_model(), make_config("smoke", optimizer="muon")).muon.defaults["weight_decay"] == 0.0
    assert isinstance(make_config("smoke", optimizer="muon", muon_lr_scale=2).muon_lr_scale, float)  # JSON: 2.0
    assert run_optimizer(_model(), config).muon.defaults["momentum"] == 0.9
    assert run_optimizer(_model(), make_config("smoke", optimizer="muon")).muon.defaults["momentum"] == 0.95
    assert _config_from(build_parser().parse_args(["train", "--profile", "smoke"])).muon_layers == "hidden"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--muon-layers", "outer"])


def test_a_muon_run_trains_lowers_its_loss_and_resumes_exactly(project):
    """A run with optimizer='muon' lowers its loss, and an interrupted one resumed from its checkpoint (both
    optimizers' states) ends with the uninterrupted run's weights; an Adam run refuses the directory."""
    config = make_config("smoke", n_sources=2, epochs=3, optimizer="muon", **SMALL)
    full = train(config, project / "full", progress=False, write_results=False)
    assert full["history"][-1]["loss"] < full["history"][0]["loss"]
    part = train(config, project / "part", progress=False, stop_after_epochs=1, write_results=False)
    assert not part["completed"]
    train(config, project / "part", progress=False, write_results=False)
    a, stored = load_model(project / "full")
    b, _ = load_model(project / "part")
    assert stored.optimizer == "muon"
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), ka
    assert isinstance(run_optimizer(a, stored), MuonAdam)
    with pytest.raises(BssvaeError, match="optimizer"):
        train(make_config("smoke", n_sources=2, epochs=3, **SMALL), project / "part", progress=False,
              write_results=False)
