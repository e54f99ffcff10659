# Loads a Vae model (vae export --format safetensors) in PyTorch and estimates its lower bound (estimator B, eq. 7)
# on images in a .npy file (rows of grey levels in [0, 1]); Bernoulli decoders (MNIST) and the Gaussian decoders (Frey
# Face's sigmoid mean, or an unconstrained mean). Prints the bound, and the encoder's means and the decoder's means at
# them for the first 3 images (deterministic: Vae's Encode and Decode give the same). Needs torch and numpy only.
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
layers = int(meta.get("model.hidden_layers", "1"))  # written for deeper networks only
def hidden(v, prefix):  # an MLP's tanh layers: prefix.hidden, then prefix.hidden2, ...
    for i in range(1, layers + 1):
        v = torch.tanh(linear(v, prefix + (".hidden" if i == 1 else f".hidden{i}")))
    return v
h = hidden(x, "encoder")
mean, logvar = linear(h, "encoder.mean"), linear(h, "encoder.logvar")
kl = -0.5 * (1 + logvar - mean ** 2 - logvar.exp()).sum(1)  # Appendix B
torch.manual_seed(0)
z = mean + (0.5 * logvar).exp() * torch.randn(samples, *mean.shape, dtype=mean.dtype)
likelihood = meta["model.likelihood"]
def decode(z):  # the decoder's mean and, for a Gaussian decoder, the log-variance
    hd = hidden(z, "decoder")
    if likelihood == "bernoulli":
        return linear(hd, "decoder.logits"), None
    m = linear(hd, "decoder.mean")
    return (torch.sigmoid(m) if likelihood == "gaussian-sigmoid-mean" else m), linear(hd, "decoder.logvar")
out, out_logvar = decode(z)
if likelihood == "bernoulli":
    reconstruction = -torch.nn.functional.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none").sum(-1).mean(0)
    decoded = torch.sigmoid(decode(mean[:3])[0])
else:  # log N(x; mean, exp(logvar)) summed over pixels (Appendix C.2)
    reconstruction = (-0.5 * (out_logvar + (x - out) ** 2 / out_logvar.exp() + torch.log(torch.tensor(2 * torch.pi, dtype=x.dtype)))).sum(-1).mean(0)
    decoded = decode(mean[:3])[0]
print(json.dumps({"bound": (reconstruction - kl).mean().item(), "encoder_mean": mean[:3].tolist(), "decoder_mean": decoded.tolist()}))
