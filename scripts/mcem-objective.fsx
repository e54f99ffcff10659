// Monte Carlo EM on Figure 3's small case (the first 1000 MNIST training images, J = 3, 100 hidden units, the
// paper's settings): prints its own objective, the mean log p(x, z) at the chains' samples, with the HMC step size
// and the chains' spread, every 50 iterations (one iteration = 1000 training samples).
// Build first (`dotnet build Vae.Cli -c Release`), then:
//   dotnet fsi scripts/mcem-objective.fsx [iterations]
#r "../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"

open TorchSharp
open Vae.Core
open Vae.Core.Data

let iterations = match fsi.CommandLineArgs with [| _; n |] -> int n | _ -> 750
NativeTuning.retainFreedMemory () |> ignore
Torch.setThreads 2
NativeTuning.configureMkl () |> ignore // MKL's kernels as vae chooses them (VAE_MKL=default keeps MKL's own)
let mnist = Mnist.load DataOptions.Default
let data = Torch.ofArray2 1000 784 (Images.slice 0 1000 mnist.Train).Pixels
let c = LearnerConfig.paper 0.02
let g = Torch.generator 0L
let model = VaeModel.create { InputDim = 784; HiddenUnits = 100; LatentDim = 3; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01; HiddenLayers = 1 } g
let mutable s = Aevb.init model
s <- { s with Mcmc = Some(Mcem.initChains s.Model 1000L g) }
for i in 1 .. iterations do
    let next, objective = Mcem.step c data g s
    s <- next
    if i % 50 = 0 then
        let chains = s.Mcmc.Value.Chains
        printfn "iteration %4d: mean log p(x, z) %8.2f, step size %.4f, chains' standard deviation %.3f"
            i objective s.Mcmc.Value.StepSize (chains.std().item<float32> ())
