// The fused step (M = 100, random data) in float32 and with bfloat16 multiplies, alternated in one process: medians of
// 9 rounds of 100 steps. To compare two builds, check the earlier commit out in a worktree, copy this script into its
// docs/experiments, build both and run the script in each alternately.
//   dotnet fsi --optimize+ docs/experiments/step-time.fsx 2
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open System
open TorchSharp
open Vae.Core
NativeTuning.retainFreedMemory () |> ignore
let threads = int (fsi.CommandLineArgs.[1])
Torch.setThreads threads
let g = Torch.generator 1L
let data = torch.rand(50000L, 784L, generator = g)
let make mixed =
    let model = VaeModel.create { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01 } g
    let c = { LearnerConfig.paper 0.02 with MixedPrecision = mixed }
    let s = FusedAevb.prepare (Aevb.init model)
    let b = FusedAevb.workspace c s.Model.Config
    let mutable st = s
    fun steps ->
        let sw = Diagnostics.Stopwatch.StartNew()
        for _ in 1 .. steps do st <- fst (FusedAevb.step c data g b st)
        sw.Elapsed.TotalMilliseconds / float steps
let f32, bf = make false, make true
f32 150 |> ignore; bf 150 |> ignore
let rf, rb = ResizeArray(), ResizeArray()
for _ in 1 .. 9 do
    rf.Add(f32 100); rb.Add(bf 100)
let med (r: ResizeArray<float>) = (Seq.sort r |> Seq.toArray).[r.Count / 2]
printfn "threads %d: float32 %.2f ms, bfloat16 %.2f ms, ratio %.2f" threads (med rf) (med rb) (med rf / med rb)
