import gc
import threading
import time
import weakref

import torch
from torch import nn

from gnet.guard import _modules, exclusive, model_lock, seeded
from gnet.net.model import googlenet


def test_exclusive_sets_and_restores_mixed_modes_even_on_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.BatchNorm1d(2))
    net.train()
    net[2].eval()  # a caller's frozen batch norm
    try:
        with exclusive(net, training=False):
            assert not any(m.training for m in net.modules())
            net.train()  # the body may change modes too
            raise RuntimeError
    except RuntimeError:
        pass
    assert [m.training for m in net.modules()] == [True, True, True, False]


def test_exclusive_restores_what_the_body_changed_when_it_changed_nothing_itself():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.BatchNorm1d(2)).eval()
    with exclusive(net, training=False):  # already in eval: exclusive changes nothing on entry
        net[2].train()
        net.train()
    assert not net.training and not net[1].training and not net[2].training


def test_exclusive_watches_the_modules_whose_mode_changes_an_output():
    class Custom(nn.Module):  # unknown to the guard: it may read self.training
        def forward(self, x):
            return x

    net = googlenet(num_classes=10, batch_norm=True, seed=0)
    net.add_module("custom", Custom())
    _, watched = _modules(net)
    assert {type(m).__name__ for m in watched} == {"GoogLeNet", "BatchNorm2d", "Dropout", "Custom"}
    assert len(watched) == 1 + sum(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in net.modules()) + 1


def test_one_lock_per_model():
    a, b = nn.Linear(1, 1), nn.Linear(1, 1)
    assert model_lock(a) is model_lock(a) and model_lock(a) is not model_lock(b)


def test_seeded_repeats_draws_and_leaves_the_callers_rng_alone():
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    with seeded(1):
        first = torch.rand(3)
    with seeded(1):
        second = torch.rand(3)
    assert torch.equal(first, second)
    assert torch.equal(torch.rand(3), expected_next)


def test_seeded_blocks_are_not_interleaved_across_threads():
    results: dict[int, torch.Tensor] = {}
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        barrier.wait()
        with seeded(123):
            draws = []
            for _ in range(50):
                draws.append(torch.rand(1))
                time.sleep(0.001)  # let the other threads run: without the lock they would draw here
        results[i] = torch.cat(draws)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(results[0], r) for r in results.values())


def test_a_model_held_once_can_still_be_freed():
    net = googlenet(num_classes=10, seed=0)
    with exclusive(net, training=True):
        pass
    gone = weakref.ref(net)
    del net
    gc.collect()
    assert gone() is None  # the guard's per-model cache must not keep its key alive
