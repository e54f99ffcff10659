// The K = 5000 importance-weighted estimate in float32 and with the bfloat16 output multiply, on the same draws.
//   dotnet fsi docs/experiments/iwae-mixed-precision.fsx -- runs/mnist-j20/checkpoint.safetensors 200
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
open Vae.Core.Data
NativeTuning.retainFreedMemory () |> ignore
Torch.setThreads 2
let args = fsi.CommandLineArgs |> Array.skip 1 |> Array.filter ((<>) "--")
let file, images = args.[0], int args.[1]
let model = ModelCheckpoint.read file (Checkpoint.load file)
let mnist = Mnist.load DataOptions.Default |> Mnist.paperSplit
let test = (Torch.ofArray2 mnist.Test.Count mnist.Test.Dimension mnist.Test.Pixels).narrow(0L, 0L, int64 images)
let perImage estimate seed =
    use _ = torch.no_grad ()
    let g = Torch.generator seed
    [| for start in 0L .. 100L .. int64 images - 1L do
           use _ = torch.NewDisposeScope()
           let x = test.narrow(0L, start, min 100L (int64 images - start))
           yield! (estimate model x 5000 (Evaluation.chunkFor 5000 x) g : Tensor).data<float32>().ToArray() |]
for seed in [ 1L; 2L ] do
    let f32 = perImage ImportanceWeighted.bound seed
    let bf = perImage ImportanceWeighted.boundMixedPrecision seed
    let diffs = Array.map2 (fun (a: float32) b -> float b - float a) f32 bf
    printfn "seed %d: float32 %.4f, bfloat16 %.4f; per-image difference mean %.4f, largest %.4f"
        seed (Array.averageBy float f32) (Array.averageBy float bf) (Array.average diffs) (diffs |> Array.map abs |> Array.max)
