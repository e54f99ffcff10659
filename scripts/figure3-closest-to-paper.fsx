// Figure 3, N_train = 50,000, redrawn from committed records with the settings closest to the paper's text and
// anglepy's code: AEVB and wake-sleep at section 5's step sizes (the panel's runs), Monte Carlo EM with section 5's
// rule and anglepy's Adagrad warm-up of 10 to 1200 EM iterations, on anglepy's axis (EM iterations x N).
// Build first (`dotnet build Vae.Cli -c Release`), then from the repository's root:
//   dotnet fsi scripts/figure3-closest-to-paper.fsx
// writes docs/results/figure3-ntrain50000-conventions/closest-to-paper.json and docs/images/figure3-ntrain50000-closest.png.
#r "../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
#r "../Vae.Cli/bin/Release/net10.0/SkiaSharp.dll"
#r "../Vae.Cli/bin/Release/net10.0/ScottPlot.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Experiments.dll"

open System.Collections.Generic
open Vae
open Vae.Experiments

let records = "docs/results"
let run algorithm directory (perIteration: int64 option) =
    let series = RunRecord.Read(System.IO.Path.Combine(records, directory)).Evaluations
    ExperimentRun(algorithm, 3, directory, true, series, SamplesPerIteration = (perIteration |> Option.toNullable))
let runs =
    [| run "aevb" "figure3-ntrain50000/j3-aevb" None
       run "wake-sleep" "figure3-ntrain50000/j3-wake-sleep" None
       run "mcem" "figure3-ntrain50000-conventions/mcem-rule-warmup10" (Some (5L * 50_000L)) |]
let settings =
    dict [ "train_images", "50000"; "latent", "3"; "hidden_units", "100"
           "step_size", "section 5's rule per run: AEVB 0.1, wake-sleep 0.02, Monte Carlo EM 0.1 (10 EM iterations per candidate)"
           "warm_up", "Adagrad warm-up 100 updates for AEVB and wake-sleep, 10 for Monte Carlo EM (anglepy's step_adagrad)"
           "estimator", "Appendix D on the first 100 training and test images: 50 posterior samples, 4 leapfrog steps, burn-in 1000"
           "data", "grey levels"
           "mcem_samples", "drawn at EM iterations x N (anglepy's loop_mcem); recorded at 5 N per iteration, 1200 iterations"
           "records", "figure3-ntrain50000/j3-aevb, figure3-ntrain50000/j3-wake-sleep, figure3-ntrain50000-conventions/mcem-rule-warmup10" ]
let results =
    ExperimentResults("figure3", "MNIST: first 50000 training images / 10000 official test images", 60_000_000L, 0L,
                      Dictionary(settings), "marginal log-likelihood (nats)", runs, 0.0, MachineFacts.Current(), ExperimentResults.BuildCommit)
results.Save(System.IO.Path.Combine(records, "figure3-ntrain50000-conventions", "closest-to-paper.json"))
LearningCurvePlot.Save([| results |], "docs/images/figure3-ntrain50000-closest.png", McemAxis.IterationsTimesN)
for r in runs do
    let last = r.Series.[r.Series.Count - 1]
    printfn "%-10s %11d samples: train %.2f, test %.2f" r.Algorithm last.SamplesSeen last.TrainBound last.TestBound
