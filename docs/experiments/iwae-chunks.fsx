#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
if fsi.CommandLineArgs.Length < 2 then NativeTuning.retainFreedMemory () |> ignore
Torch.setThreads 2
let g = Torch.generator 1L
let model = VaeModel.create { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01 } g
let x = torch.rand(100L, 784L, generator = g)
Evaluation.importanceWeighted model (x.narrow(0L, 0L, 2L)) 100 100 g |> ignore
for _ in 1 .. 2 do
    let sw = System.Diagnostics.Stopwatch.StartNew()
    Evaluation.importanceWeighted model x 5000 100 g |> ignore
    printfn "importanceWeighted 100 images: %.2f s -> %.0f s per 10k (malloc %s)" sw.Elapsed.TotalSeconds (sw.Elapsed.TotalSeconds * 100.0) (if fsi.CommandLineArgs.Length < 2 then "retain" else "default")
