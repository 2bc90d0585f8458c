"""The CPU training forward computes exactly transformers' Mamba, gradients included."""

from __future__ import annotations

import torch
from transformers import MambaConfig, MambaForCausalLM

from demigod.lifecycle.mamba_cpu import SelectiveScan, mamba_hidden_states


def test_selective_scan_gradients_match_finite_differences() -> None:
    generator = torch.Generator().manual_seed(0)
    batch, steps, channels, state = 2, 6, 3, 4

    def tensor(*shape: int, positive: bool = False) -> torch.Tensor:
        value = torch.rand(*shape, generator=generator, dtype=torch.float64)
        value = value if positive else value - 0.5
        return value.requires_grad_()

    inputs = (
        tensor(batch, steps, channels),
        tensor(batch, steps, channels, positive=True),  # delta: a softplus output
        -tensor(channels, state, positive=True).detach().requires_grad_(),  # A < 0
        tensor(batch, steps, state),
        tensor(batch, steps, state),
    )
    assert torch.autograd.gradcheck(SelectiveScan.apply, inputs)


def _tiny_mamba() -> MambaForCausalLM:
    torch.manual_seed(0)
    config = MambaConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, state_size=8
    )
    return MambaForCausalLM(config)


def test_forward_and_gradients_equal_transformers() -> None:
    model = _tiny_mamba()
    input_ids = torch.randint(0, 97, (3, 12), generator=torch.Generator().manual_seed(1))

    reference = model.backbone(input_ids=input_ids).last_hidden_state
    reference.square().sum().backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    ours = mamba_hidden_states(model, input_ids)
    ours.square().sum().backward()

    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
    assert expected
    for name, gradient in expected.items():
        torch.testing.assert_close(
            model.get_parameter(name).grad, gradient, rtol=1e-3, atol=1e-5, msg=name
        )
