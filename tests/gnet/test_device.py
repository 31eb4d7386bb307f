from unittest import mock

import pytest
import torch

from gnet.device import describe_device, resolve_device, synchronize
from gnet.errors import DeviceError


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("GNET_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("gnet.device._mps_available", lambda: True)
    assert resolve_device().type == "mps"
    monkeypatch.setattr("gnet.device._mps_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None).type == "cuda"


def test_env_overrides_auto_and_argument_overrides_env(monkeypatch):
    monkeypatch.setenv("GNET_DEVICE", "cpu")
    assert resolve_device() == torch.device("cpu")
    monkeypatch.setenv("GNET_DEVICE", "bogus")
    with pytest.raises(DeviceError, match="Unknown device 'bogus'"):
        resolve_device()
    assert resolve_device("cpu").type == "cpu"


def test_unavailable_devices_are_user_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("gnet.device._mps_available", lambda: False)
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="MPS is not available"):
        resolve_device("mps")
    with pytest.raises(DeviceError):
        resolve_device("xla")


def test_describe_cpu():
    assert describe_device(torch.device("cpu")).startswith("cpu")


def test_synchronize_waits_for_the_accelerator_it_is_given_only():
    with mock.patch("torch.cuda.synchronize") as cuda, mock.patch("torch.mps.synchronize") as mps:
        synchronize(torch.device("cpu"))
        assert not cuda.called and not mps.called
        synchronize(torch.device("cuda", 1))
        cuda.assert_called_once_with(torch.device("cuda", 1))
        synchronize(torch.device("mps"))
        mps.assert_called_once_with()
