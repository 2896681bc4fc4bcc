"""Which float precision the GFL forward runs in (MODEL.PRECISION, params `train.precision`)."""
import torch

PRECISIONS = ("fp32", "bf16", "auto")


def bf16_is_fast(device: str) -> bool:
    """Whether bf16 autocast speeds GFL up on `device`: a CUDA GPU with bf16, or a CPU with AVX-512 BF16
    (AMX CPUs have it too). Without it a CPU emulates bf16, 4-14x slower than fp32 (docs/pipeline.md, "bf16")."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # torch >= 2.1
    return bool(check and check())


def resolve_precision(name: str, device: str) -> str:
    """fp32 | bf16 as given; auto: bf16 where it is fast (`bf16_is_fast`), else fp32."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {name!r}")
    return ("bf16" if bf16_is_fast(device) else "fp32") if name == "auto" else name
