// With docs/experiments/float32-kernels.patch applied and built: the fused step in float32 as kept, in float32 with the
// one-pass kernels and Adagrad (FusedAevb.float32Kernels), and with bfloat16 multiplies, alternated in one process.
//   LD_LIBRARY_PATH=Vae.Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi --optimize+ docs/experiments/float32-kernels.fsx 2 [M]
// (threads, then the minibatch size, default 100; MKL's kernels as vae chooses them, VAE_MKL=default for its own)
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open System
open TorchSharp
open Vae.Core
NativeTuning.retainFreedMemory () |> ignore
let threads = int (fsi.CommandLineArgs.[1])
let batch = if fsi.CommandLineArgs.Length > 2 then int fsi.CommandLineArgs.[2] else 100
Torch.setThreads threads
printfn "%A" (NativeTuning.configureMkl ())
let g = Torch.generator 1L
let data = torch.rand(50000L, 784L, generator = g)
let make kernels mixed =
    let model = VaeModel.create { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01 } g
    let c = { LearnerConfig.paper 0.02 with MixedPrecision = mixed; BatchSize = batch }
    let s = FusedAevb.prepare (Aevb.init model)
    let b = FusedAevb.buffersOf s
    let mutable st = s
    fun steps ->
        FusedAevb.float32Kernels <- kernels
        let sw = Diagnostics.Stopwatch.StartNew()
        for _ in 1 .. steps do st <- fst (FusedAevb.step c data g b st)
        sw.Elapsed.TotalMilliseconds / float steps
let f32, f32k, bf = make false false, make true false, make false true
f32 150 |> ignore; f32k 150 |> ignore; bf 150 |> ignore
let ra, rb, rc = ResizeArray(), ResizeArray(), ResizeArray()
for _ in 1 .. 9 do
    ra.Add(f32 100); rb.Add(f32k 100); rc.Add(bf 100)
let med (r: ResizeArray<float>) = (Seq.sort r |> Seq.toArray).[r.Count / 2]
printfn "M = %d, threads %d: float32 %.2f ms, float32 with kernels %.2f ms, bfloat16 %.2f ms" batch threads (med ra) (med rb) (med rc)
