// The seed spread behind GoldenRunTests' bands: the tests' short runs (SmallMnist: the first 1000 MNIST training and
// 500 test images; J = 3, 40 hidden units; Adagrad 0.05) for seeds 0-9. AEVB and wake-sleep: the test bound after 10^5
// samples; Monte Carlo EM (the first 200 training images, 60 EM iterations): the exact log p(x) of its model on the
// first 50 of them (quadrature). One thread; run once per MKL kernel path:
//   dotnet fsi docs/results/golden-runs/seed-spread.fsx                                  (MKL's own dispatch)
//   MKL_ENABLE_INSTRUCTIONS=AVX2 dotnet fsi docs/results/golden-runs/seed-spread.fsx     (AVX2 kernels)
// Output: docs/results/golden-runs/seed-spread.txt (one line per algorithm and path: the ten values, mean, sd).
#r "../../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
#r "../../../Vae.Cli/bin/Release/net10.0/Vae.dll"
open Vae
Vae.TorchRuntime.Threads <- 1
let mnist = Vae.Data.DataSets.Mnist()
let first (x: Vae.Data.ImageData) n = Vae.Data.ImageData(n, x.Height, x.Width, x.Pixels.Slice(0, n * x.Dimension).ToArray())
let train, test = first mnist.Train 1000, first mnist.Test 500
let model = VaeModelOptions(HiddenUnits = 40, LatentDimensions = 3)
let path = match System.Environment.GetEnvironmentVariable "MKL_ENABLE_INSTRUCTIONS" with null | "" -> "MKL's own dispatch" | v -> v
let value algorithm seed =
    let options = AevbOptions(Seed = seed, StepSize = 0.05)
    use trainer : Trainer =
        match algorithm with
        | "aevb" -> new AevbTrainer(model, options)
        | "wake-sleep" -> new WakeSleepTrainer(model, options)
        | _ -> new McemTrainer(model, options)
    if algorithm = "mcem" then
        let train200 = first train 200
        trainer.Fit(train200, TrainingOptions(TotalSamples = 5L * 200L * 60L, EvaluateEvery = 0L, MarginalLikelihoodPoints = 50)) |> ignore
        MarginalLikelihoodEstimator(MarginalLikelihoodOptions(Method = MarginalLikelihoodMethod.Exact)).Estimate(trainer.Model, first train200 50)
    else
        let s = trainer.Fit(train, TrainingOptions(TotalSamples = 100_000L, EvaluateEvery = 0L, TestData = test))
        s.Evaluations.[s.Evaluations.Count - 1].TestBound
for algorithm in [ "aevb"; "wake-sleep"; "mcem" ] do
    let v = [| for seed in 0L .. 9L -> value algorithm seed |]
    let mean = Array.average v
    let sd = sqrt ((v |> Array.sumBy (fun x -> (x - mean) ** 2.0)) / 9.0)
    printfn "%s (%s): %s; mean %.2f, sd %.2f" algorithm path (v |> Array.map (sprintf "%.4f") |> String.concat " ") mean sd
