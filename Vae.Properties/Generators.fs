/// Shared helpers for the property tests.
module Vae.Properties.Generators

open Vae
open FsCheck
open Expecto
open TorchSharp
open Vae.Core.Data

/// float64, the dtype of the numeric properties.
let f64 = torch.float64

/// The seed of every property run: VAE_PROPERTY_SEED when set, else a fixed one, so that a run is replayable (Expecto
/// prints the (seed, gamma, size) of a failing property; the program prints the seed at its start).
let propertySeed =
    match System.Environment.GetEnvironmentVariable "VAE_PROPERTY_SEED" with
    | null | "" -> 20131220UL
    | text ->
        match System.UInt64.TryParse text with
        | true, v -> v
        | _ -> failwithf "VAE_PROPERTY_SEED = '%s': expected an unsigned integer" text

/// FsCheck settings running n cases from the run's seed (FsCheck's gamma must be odd).
let config n = { FsCheckConfig.defaultConfig with maxTest = n; replay = Some (propertySeed, 0x9E3779B97F4A7C15UL, None) }

/// A size in [lo, hi] from a generated positive integer.
let size (n: PositiveInt) lo hi = lo + n.Get % (hi - lo + 1)

/// Whether two tensors have the same shape and the same values, bit for bit (a NaN never equals).
let sameBits (a: torch.Tensor) (b: torch.Tensor) = a.shape = b.shape && a.eq(b).all().item<bool> ()

/// The run trained on data until it has taken `steps` steps, uncancelled and reporting nothing.
let fitTo (data: torch.Tensor) (steps: int64) (r: Vae.Core.TrainingRun) : Vae.Core.TrainingRun =
    Vae.Core.TrainingRun.fit data steps System.Threading.CancellationToken.None (fun _ _ -> ()) r

/// A reader is total on its input: it returns a well-formed value or raises DataFormatException,
/// never another exception (a crash) and never a value that contradicts itself (garbage).
let total (read: byte[] -> 'T) (wellFormed: 'T -> bool) (bytes: byte[]) : bool =
    try wellFormed (read bytes)
    with :? DataFormatException -> true

/// Applies a mutation to bytes: overwrite one byte, then cut or extend the end.
let mutate (bytes: byte[]) (position: int) (value: byte) (cut: int) : byte[] =
    let b = Array.copy bytes
    if b.Length > 0 then b.[abs position % b.Length] <- value
    let cut = cut % 40
    if cut < 20 then b.[.. b.Length - 1 - (cut % max 1 b.Length)] else Array.append b (Array.create (cut - 19) value)

/// Images are well formed when their shape accounts for every value and the values lie in [0, 1].
let wellFormedImages (x: Images) =
    x.Count >= 0 && x.Height > 0 && x.Width > 0 && x.Pixels.Length = x.Count * x.Height * x.Width
    && x.Pixels |> Array.forall (fun v -> v >= 0.0f && v <= 1.0f)

open Vae.Core

/// The lower bound of a linear-Gaussian decoder (p(x|z) = N(W z + b, diag s^2)) in closed form, per datapoint:
/// E_q[log p(x|z)] = sum_d log N(x_d; (W mu + b)_d, s_d^2) - (1/2) sum_j W_dj^2 sigma_j^2 / s_d^2, minus KL(q || p(z)).
let closedFormElbo (m: VaeModel) (x: Tensor) : Tensor =
    let p = match m.Decoder with LinearGaussianDecoder p -> p | _ -> failwith "a linear-Gaussian decoder"
    let q = VaeModel.encode m x
    let atMean = Distributions.gaussianLogDensity { Mean = Linear.apply p.Mean q.Mean; LogVar = p.LogVar.expand_as(x) } x
    let spread = (q.LogVar.exp().mm(p.Mean.Weight.pow(Torch.scalar 2.0).t()) / p.LogVar.exp()).sum(-1L) * 0.5
    atMean - spread - Distributions.klToStandardNormal q
