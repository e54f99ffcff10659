// log p(x) of a Monte Carlo EM model three ways, on the first 100 training or test images: Appendix D's estimate with
// its chains started from the (untrained) encoder's q(z|x), as `vae evaluate --estimator hmc-marginal` starts them;
// Appendix D started from a better point (a training image's MCEM chain; for a test image, the best of 5000 prior
// draws by log p(x, z)); and the importance-weighted estimate with K = 1000 draws from a Gaussian of sd S around that
// point, which is a lower bound on log p(x) in expectation whatever the proposal.
//   dotnet fsi docs/experiments/mcem-estimates.fsx runs/X/checkpoint.safetensors train     (or test)
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
open Vae.Core.Data

Torch.setThreads 2
NativeTuning.configureMkl () |> ignore
let path, which = fsi.CommandLineArgs.[1], fsi.CommandLineArgs.[2]
let run = TrainingRun.ofCheckpoint path (Checkpoint.load path)
let m = run.State.Model
let chains = run.State.Mcmc |> Option.map (fun s -> s.Chains) |> Option.defaultWith (fun () -> failwith "not a Monte Carlo EM checkpoint")
let mnist = Mnist.load DataOptions.Default
let n = 100L
let x = Torch.ofArray2 100 784 (Images.slice 0 100 (if which = "train" then mnist.Train else mnist.Test)).Pixels
let logJoint = VaeModel.logJoint m x
let latent = int64 m.Config.LatentDim
let g = Torch.generator 9L
let noGrad = torch.no_grad ()

let bestOfPrior () =
    let candidates = torch.randn([| 5000L; n; latent |], generator = g)
    let scores = torch.cat([| for i in 0L .. 500L .. 4999L -> logJoint (candidates.narrow(0L, i, 500L)) |], 0L)
    candidates.permute(1L, 0L, 2L).gather(1L, scores.argmax(0L).view(n, 1L, 1L).expand(n, 1L, latent)).squeeze(1L)
let centre = if which = "train" then chains.narrow(0L, 0L, n) else bestOfPrior ()
let q = VaeModel.encode m x
let fromQ = Distributions.reparameterise q (torch.randn(q.Mean.shape, generator = g))
printfn "%s, %s" path which
printfn "Appendix D, chains from q(z|x): %.2f" ((MarginalLikelihood.estimate MarginalLikelihood.paper logJoint fromQ g).mean().ToDouble())
printfn "Appendix D, chains from the better start: %.2f" ((MarginalLikelihood.estimate MarginalLikelihood.paper logJoint centre g).mean().ToDouble())
printfn "log p(x, z) at the better start: %.2f" ((logJoint centre).mean().ToDouble())
for s in [ 1.0; 0.3; 0.1 ] do
    use _ = torch.NewDisposeScope()
    let k = 1000L
    let eps = torch.randn([| k; n; latent |], generator = g)
    let logProposal = (eps * eps).sum(-1L) * -0.5 - float latent * (log s + 0.5 * log (2.0 * System.Math.PI))
    let logWeights = (logJoint (centre.unsqueeze(0L) + eps * s) - logProposal).to_type(torch.float64)
    printfn "importance-weighted, Gaussian of sd %g at the better start, K = %d: %.2f" s k ((logWeights.logsumexp(0L) - log (float k)).mean().ToDouble())
