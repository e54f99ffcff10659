#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
NativeTuning.retainFreedMemory () |> ignore
Torch.setThreads 2
let m = int fsi.CommandLineArgs.[1]
let mixed = fsi.CommandLineArgs.Length > 2 && fsi.CommandLineArgs.[2] = "bf16"
let g = Torch.generator 1L
let data = torch.rand(50000L, 784L, generator = g)
let c = { LearnerConfig.paper 0.02 with BatchSize = m; MixedPrecision = mixed }
let mk () = FusedAevb.prepare (Aevb.init (VaeModel.create { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01 } g))
let time workers steps =
    let mutable s = mk ()
    let b = FusedAevb.buffersOf s
    for _ in 1 .. 110 do s <- fst (FusedAevb.stepWith workers c data g b s)
    let sw = System.Diagnostics.Stopwatch.StartNew()
    for _ in 1 .. steps do s <- fst (FusedAevb.stepWith workers c data g b s)
    float (steps * m) / sw.Elapsed.TotalSeconds
let steps = if m >= 1000 then 60 else 600
for r in 1 .. 3 do
    Torch.setThreads 2
    let one = time 1 steps
    let two = time 2 steps
    Torch.setThreads 1
    let two1 = time 2 steps
    let one1 = time 1 steps
    printfn "main at 1 thread: 2 workers %.0f; 1 worker %.0f" two1 one1
    printfn "M=%d %s: 1 worker x 2 threads %.0f samples/s; 2 workers x 1 thread %.0f samples/s; ratio %.2f" m (if mixed then "bf16" else "f32") one two (two / one)
