// MNIST J = 20 with the paper's settings through the autograd step, one thread, with the weight prior's term scaled by
// SCALE (1 = the paper's (M/N) log p(theta)); prints the test bound every 2.5*10^5 samples.
//   dotnet fsi docs/experiments/mnist-prior.fsx -- SCALE SAMPLES SEED
#r "../../Vae.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Data.dll"
#r "../../Vae.Cli/bin/Release/net10.0/Vae.Core.dll"
open TorchSharp
open Vae.Core
open Vae.Core.Data
NativeTuning.retainFreedMemory () |> ignore
Torch.setThreads 1
let args = fsi.CommandLineArgs |> Array.skip 1 |> Array.filter ((<>) "--")
let scale, samples, seed = float args.[0], int64 (float args.[1]), int64 args.[2]
let mnist = Mnist.load DataOptions.Default |> Mnist.paperSplit
let toTensor (x: Images) = Torch.ofArray2 x.Count x.Dimension x.Pixels
let train, test = toTensor mnist.Train, toTensor mnist.Test
let c = LearnerConfig.paper 0.02
let g = Torch.generator seed
let model = VaeModel.create { InputDim = 784; HiddenUnits = 500; LatentDim = 20; Likelihood = Bernoulli; DType = torch.float32; InitStd = 0.01; HiddenLayers = 1 } g |> VaeModel.requireGrad true
let parameters = VaeModel.tensors model
let mutable opt = Adagrad.init parameters
let n = train.shape.[0]
for step in 1L .. samples / 100L do
    use _ = torch.NewDisposeScope()
    let x = Learner.minibatch c train g
    let eps = ElboEstimator.noise 1 100 model g
    let objective, _ = Aevb.objective c n model x eps
    let objective = objective + VaeModel.logPriorOf (VaeModel.parameters model) * ((scale - 1.0) * 100.0 / float n)
    let grads = torch.autograd.grad([| objective |], parameters) |> Seq.toArray
    opt <- Optimizer.ascend c.Optimizer 0.0 opt parameters grads
    if step % 2500L = 0L then
        printfn "prior scale %g, seed %d, %d samples: test bound %.2f" scale seed (step * 100L) (Torch.noGrad (fun () -> Evaluation.bound B model test 10000 (Torch.generator (seed + step))))
