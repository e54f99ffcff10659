namespace Vae.Core

open System
open TorchSharp

/// Monte Carlo EM (Appendix E), the paper's baseline without a recognition model: a persistent HMC
/// chain per training datapoint samples the posterior p(z|x) (10 leapfrog steps, step size tuned
/// towards 90% acceptance), then 5 Adagrad updates of the decoder use those samples.
[<RequireQualifiedAccess>]
module Mcem =

    /// Weight updates per E-step (the paper: 5).
    let [<Literal>] WeightUpdates = 5

    /// Chains started from the prior N(0, I), one per training datapoint, and the paper's initial step size 0.01.
    let initChains (m: VaeModel) (n: int64) (g: torch.Generator) : McmcState =
        { Chains = torch.randn([| n; int64 m.Config.LatentDim |], dtype = m.Config.DType, generator = g); StepSize = 0.01 }

    /// One step on training data [N; D], in place: a minibatch of M datapoints by random indices;
    /// one HMC transition of their chains on log p(z) + log p(x|z); then WeightUpdates Adagrad
    /// ascents of sum log p(x|z) + (M/N) log p(theta) w.r.t. the decoder (each update counts as an
    /// optimiser step). The encoder is not used. Returns the minibatch's mean log p(x, z) at the new
    /// samples. A non-finite value raises NonFiniteBoundException before the update it would feed.
    let step (c: AevbConfig) (data: Tensor) (g: torch.Generator) (s: TrainerState) : TrainerState * float =
        use _ = torch.NewDisposeScope()
        let m = s.Model
        let mcmc = s.Mcmc |> Option.defaultWith (fun () -> invalidArg (nameof s) "Monte Carlo EM needs its chains (Mcem.initChains)")
        let idx = torch.randint(0L, data.shape.[0], [| int64 c.BatchSize |], dtype = torch.int64, generator = g)
        let x = data.index_select(0L, idx)
        let x = if c.Binarize then torch.bernoulli(x, generator = g) else x
        let logJoint (z: Tensor) = VaeModel.logLikelihood m z x + Distributions.standardNormalLogDensity z
        // E-step: one HMC transition of the minibatch's chains (gradients w.r.t. z only).
        let hmc = Hmc.step Hmc.paper true logJoint (mcmc.Chains.index_select(0L, idx)) mcmc.StepSize g
        let z = hmc.Positions.detach()
        Torch.noGrad (fun () -> mcmc.Chains.index_copy_(0L, idx, z)) |> ignore
        let value = hmc.LogDensity.mean()
        // M-step: weight updates of the decoder with the samples fixed.
        let decoder = VaeModel.decoderParameters m
        let tensors = decoder |> List.map (fun p -> p.Tensor) |> List.toArray
        let k = (VaeModel.encoderParameters m).Length
        let mutable opt = s.Optimizer
        for _ in 1 .. WeightUpdates do
            use _ = torch.NewDisposeScope()
            let objective = Aevb.withWeightPrior c data.shape.[0] decoder ((VaeModel.logLikelihood m z x).sum())
            let grads = torch.autograd.grad([| objective |], tensors) |> Seq.toArray
            Aevb.requireFinite opt.Steps (objective + value) grads |> ignore
            Adagrad.ascend c.Optimizer { opt with SumSquares = opt.SumSquares.[k ..] } tensors grads |> ignore
            opt <- { opt with Steps = opt.Steps + 1L }
        { s with Optimizer = opt; Mcmc = Some { mcmc with StepSize = hmc.StepSize } }, value.ToDouble()
