// The K = 5000 estimate on 100 images (random model): the evaluation's log p(x, z) as libtorch calls (before the
// one-pass kernels) against ImportanceWeighted.bound (Kernels.tanhLayerDots and softplusRowSums), alternating.
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open System
open TorchSharp
open Vae.Core
NativeTuning.retainFreedMemory () |> ignore
Torch.setThreads 2
let g = Torch.generator 1L
let model = VaeModel.create { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01; HiddenLayers = 1 } g
let x = torch.rand(100L, 784L, generator = g)
let p = match model.Decoder with BernoulliDecoder p -> p | _ -> failwith "no"
let oldJoint (x: Tensor) (z: Tensor) =
    let h = (Linear.apply p.Hidden z).tanh()
    let logits = Linear.apply p.Logits h
    let xDotLogits = (h * x.mm(p.Logits.Weight)).sum(-1L) + x.mv(p.Logits.Bias)
    xDotLogits - torch.nn.functional.softplus(logits).sum(-1L) + Distributions.standardNormalLogDensity z
let run (useNew: bool) =
    use _ = torch.no_grad()
    let sw = Diagnostics.Stopwatch.StartNew()
    let k = 5000
    let chunk = Evaluation.chunkFor k x
    let r =
        if useNew then ImportanceWeighted.bound model x k chunk g
        else ImportanceWeighted.boundOf (oldJoint x) (VaeModel.encode model x) k chunk g
    r.sum().ToDouble() |> ignore
    sw.Elapsed.TotalSeconds
run true |> ignore; run false |> ignore
for _ in 1 .. 4 do
    let a = run false
    let b = run true
    printfn "100 images K=5000: old %.2f s, new %.2f s (per 10k: %.0f / %.0f s)" a b (a * 100.0) (b * 100.0)
