// Frey Face seed S (the paper's settings, J = 10, one thread), at 10^4 ... 10^6 samples: the test bound, its
// reconstruction and KL terms, the decoder's mean log-variance, and the reconstruction term had each pixel's
// variance been the best constant for the current means (the mean squared residual per pixel).
//   dotnet fsi docs/experiments/frey-early.fsx -- 0
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
open Vae.Core.Data
Torch.setThreads 1
let frey = FreyFace.load DataOptions.Default
let toTensor (x: Images) = Torch.ofArray2 x.Count x.Dimension x.Pixels
let train, test = toTensor frey.Train, toTensor frey.Test
let seed = int64 (fsi.CommandLineArgs |> Array.last)
let settings =
    { Algorithm = AevbAlgorithm
      Model = { InputDim = 560; HiddenUnits = 200; LatentDim = 10; Likelihood = GaussianSigmoidMean; DType = torch.float32; InitStd = 0.01; HiddenLayers = 1 }
      Learner = LearnerConfig.paper 0.02; Seed = seed; Dataset = frey.Description }
let report (run: TrainingRun) =
    Torch.noGrad (fun () ->
        let m = run.State.Model
        let g = Torch.generator 99L
        let q = VaeModel.encode m test
        let z = Distributions.reparameterise q (torch.randn(q.Mean.shape, generator = g))
        let p = match m.Decoder with GaussianDecoder d -> GaussianMlp.apply true d z | _ -> failwith "Gaussian decoder expected"
        let ll = Distributions.gaussianLogDensity p test   // per datapoint? summed over pixels below
        let llPer = if ll.dim() = 2L then ll.sum(1L) else ll
        let kl = ((q.Mean * q.Mean + q.LogVar.exp() - q.LogVar - 1.0) * 0.5).sum(1L)
        let r2 = (test - p.Mean).square().mean([| 0L |])   // per pixel
        let bestLl = (r2.log() + 1.0 + System.Math.Log(2.0 * System.Math.PI)).mul(Torch.scalar -0.5).sum()
        printfn "%9d  bound %8.2f  log p(x|z) %8.2f  KL %6.2f  mean decoder log-variance %6.2f  log p(x|z) with the best per-pixel variances %8.2f"
            (run.Step * 100L) ((llPer - kl).mean().item<float32>()) (llPer.mean().item<float32>()) (kl.mean().item<float32>())
            (p.LogVar.mean().item<float32>()) (bestLl.item<float32>()))
let checkpoints = set [ 100L; 300L; 1000L; 3000L; 10000L ]
TrainingRun.create settings |> TrainingRun.fit train 10000L System.Threading.CancellationToken.None (fun run _ -> if checkpoints.Contains run.Step then report run) |> ignore
