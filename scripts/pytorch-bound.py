# Loads a Vae model (vae export --format safetensors) in PyTorch and estimates its lower bound (estimator B, eq. 7)
# on images in a .npy file (rows of grey levels in [0, 1]); Bernoulli decoders (MNIST). Needs torch and numpy only.
#   python3 scripts/pytorch-bound.py model.safetensors images.npy [samples per image]
import json, struct, sys
import numpy as np, torch

def load(path):  # the safetensors layout: header length, JSON header, raw little-endian data
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0])); data = f.read()
    dtypes = {"F32": torch.float32, "F64": torch.float64, "U8": torch.uint8}
    meta = header.pop("__metadata__", {})
    return meta, {k: torch.frombuffer(bytearray(data[v["data_offsets"][0]:v["data_offsets"][1]]), dtype=dtypes[v["dtype"]]).reshape(v["shape"]) for k, v in header.items()}

meta, w = load(sys.argv[1])
x = torch.from_numpy(np.load(sys.argv[2]).reshape(-1, int(meta["model.input"]))).to(w["encoder.hidden.weight"].dtype)
samples = int(sys.argv[3]) if len(sys.argv) > 3 else 10
linear = lambda v, p: v @ w[p + ".weight"].T + w[p + ".bias"]  # nn.Linear's layout: weight [out, in]
h = torch.tanh(linear(x, "encoder.hidden"))
mean, logvar = linear(h, "encoder.mean"), linear(h, "encoder.logvar")
kl = -0.5 * (1 + logvar - mean ** 2 - logvar.exp()).sum(1)  # Appendix B
torch.manual_seed(0)
z = mean + (0.5 * logvar).exp() * torch.randn(samples, *mean.shape, dtype=mean.dtype)
logits = linear(torch.tanh(linear(z, "decoder.hidden")), "decoder.logits")
reconstruction = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1).mean(0)
print(json.dumps({"bound": (reconstruction - kl).mean().item(), "encoder_mean": mean[:3].tolist()}))
