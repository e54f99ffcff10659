// The xunit test's setting (1000 MNIST images, J = 3, 40 hidden units, step 0.05, 60,000 samples): test bounds in
// float32 and with bfloat16 multiplies for seeds 7-12 (needs MNIST in the cache).
//   LD_LIBRARY_PATH=Vae.Cli/bin/Release/net10.0/runtimes/linux-x64/native dotnet fsi docs/experiments/mixed-small-seeds.fsx
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.dll"
open Vae
open Vae.Data
Vae.Core.Torch.setThreads 1
let mnist = DataSets.Mnist(DataSetOptions())
let slice (x: ImageData) n = ImageData(n, x.Height, x.Width, x.Pixels.Slice(0, n * x.Dimension).ToArray())
let train, test = slice mnist.Train 1000, slice mnist.Test 500
let run seed mixed =
    let t = new AevbTrainer(VaeModelOptions(HiddenUnits = 40, LatentDimensions = 3), AevbOptions(Seed = seed, StepSize = 0.05, MixedPrecision = mixed))
    let s = t.Fit(train, TrainingOptions(TotalSamples = 60_000, EvaluateEvery = 0, TestData = test))
    s.Evaluations.[s.Evaluations.Count - 1].TestBound
for seed in [7L; 8L; 9L; 10L; 11L; 12L] do
    let f, m = run seed false, run seed true
    printfn "seed %d: float32 %.2f bfloat16 %.2f diff %.2f" seed f m (m - f)
