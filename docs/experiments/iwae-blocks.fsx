// The K = 5000 estimate on 100 images (random model) as ImportanceWeighted.bound does it, against the same kernels on
// row blocks of 500, 1,000 and 2,600 rows per chunk (so h and the logits stay in cache), alternating.
//   dotnet fsi --optimize+ docs/experiments/iwae-blocks.fsx
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open System
open TorchSharp
open Vae.Core
NativeTuning.retainFreedMemory () |> ignore
Torch.setThreads 2
let g = Torch.generator 1L
let model = VaeModel.create { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01 } g
let x = torch.rand(100L, 784L, generator = g)
let p = match model.Decoder with BernoulliDecoder p -> p | _ -> failwith "no"
let blockedJoint (block: int64) (x: Tensor) =
    let wT, bias = p.Hidden.Weight.t().contiguous(), p.Hidden.Bias.contiguous()
    let xW, xB = x.mm(p.Logits.Weight).contiguous(), x.mv(p.Logits.Bias)
    let outT = p.Logits.Weight.t()
    fun (z: Tensor) ->
        let leading = z.shape.[.. z.shape.Length - 2]
        let rows = z.reshape(-1L, 20L).contiguous()
        let r = rows.shape.[0]
        let dots, sums = torch.empty([| r |]), torch.empty([| r |])
        let h = torch.empty([| block; 500L |])
        let mutable start = 0L
        while start < r do
            let n = min block (r - start)
            let hb = h.narrow(0L, 0L, n)
            Kernels.tanhLayerDots (rows.narrow(0L, start, n)) wT bias xW hb (dots.narrow(0L, start, n))
            Kernels.softplusRowSums (hb.mm(outT)) p.Logits.Bias (sums.narrow(0L, start, n))
            start <- start + n
        (dots - sums).view(leading) + xB + Distributions.standardNormalLogDensity z
let run (mode: int64) =
    use _ = torch.no_grad()
    let sw = Diagnostics.Stopwatch.StartNew()
    let k = 5000
    let chunk = Evaluation.chunkFor k x
    let r =
        if mode = 0L then ImportanceWeighted.bound model x k chunk g
        else ImportanceWeighted.boundOf (blockedJoint mode x) (VaeModel.encode model x) k chunk g
    r.sum().ToDouble() |> ignore
    sw.Elapsed.TotalSeconds * 100.0
run 0L |> ignore; run 1000L |> ignore
for _ in 1 .. 3 do
    let a = run 0L
    let b = run 1000L
    let c = run 2600L
    let d = run 500L
    printfn "per 10k images: current %.0f s; blocks of 1000 rows %.0f s; 2600 rows %.0f s; 500 rows %.0f s" a b c d
