namespace Vae.Core

open Vae
open System
open TorchSharp

/// Monte Carlo EM (Appendix E), the paper's baseline without a recognition model. Each step is one
/// EM iteration over the whole training set, as in the paper's code (`step_batch_mcem`): the E-step
/// moves a persistent HMC chain per datapoint by one transition on log p(z) + log p(x|z) (10 leapfrog
/// steps, one step size tuned towards 90% acceptance); the M-step makes 5 Adagrad updates of the
/// decoder with the full-batch gradient of sum_i log p(x_i|z_i) + log p(theta).
[<RequireQualifiedAccess>]
module Mcem =

    /// Weight updates per E-step (the paper: 5).
    let [<Literal>] WeightUpdates = 5

    /// Training samples an EM iteration on n datapoints counts: the datapoints of its WeightUpdates full-batch weight
    /// updates, as AEVB counts the datapoints its gradient evaluates (the paper's code counts only iterations).
    let samplesPerIteration (n: int64) = int64 WeightUpdates * n

    /// How checkpoints record that count ("5N"); runs recorded without it counted N.
    let samplesPerIterationField = sprintf "%dN" WeightUpdates

    /// Datapoints processed at once (a memory bound; results do not depend on it beyond rounding).
    let [<Literal>] Chunk = 1000L

    /// Chains started from the prior N(0, I), one per training datapoint, and the paper's initial step size 0.01.
    let initChains (m: VaeModel) (n: int64) (g: torch.Generator) : McmcState =
        { Chains = torch.randn([| n; int64 m.Config.LatentDim |], dtype = m.Config.DType, generator = g); StepSize = 0.01 }

    let private chunks (n: int64) = [ for start in 0L .. Chunk .. n - 1L -> start, min Chunk (n - start) ]

    /// The E-step: one HMC transition of every chain (in chunks, one shared step size), the step size
    /// then adapted on the overall acceptance rate. Returns the new chains, their log p(x, z) [N] and the step size.
    let eStep (m: VaeModel) (x: Tensor) (mcmc: McmcState) (g: torch.Generator) : Tensor * Tensor * float =
        let n = x.shape.[0]
        let parts =
            [ for start, len in chunks n do
                  // A chunk's trajectory is disposed before the next starts: memory stays that of one chunk at any N.
                  use _ = torch.NewDisposeScope()
                  let xs = x.narrow(0L, start, len)
                  let eps = Torch.filled [| len; 1L |] mcmc.StepSize mcmc.Chains.dtype
                  let z, logP, accepted = Hmc.transition Hmc.paper (VaeModel.logJoint m xs) (mcmc.Chains.narrow(0L, start, len)) eps g
                  yield z.detach().MoveToOuterDisposeScope(), logP.detach().MoveToOuterDisposeScope(),
                        accepted.sum().to_type(torch.float64).MoveToOuterDisposeScope() ]
        let chains = torch.cat([| for z, _, _ in parts -> z |], 0L)
        let logP = torch.cat([| for _, v, _ in parts -> v |], 0L)
        let rate = torch.stack([| for _, _, a in parts -> a |]).sum().ToDouble() / float n
        chains, logP, Hmc.adaptShared Hmc.paper n rate mcmc.StepSize

    /// The full-batch gradient of sum_i log p(x_i|z_i) + log p(theta) (weights only, when the weight
    /// prior is on) with respect to the decoder's parameters, accumulated over chunks. Returns the gradients
    /// and the objective's value.
    let mStepGradient (c: LearnerConfig) (m: VaeModel) (x: Tensor) (z: Tensor) : Tensor[] * Tensor =
        let decoder = VaeModel.decoderParameters m
        let tensors = decoder |> List.map (fun p -> p.Tensor) |> List.toArray
        let parts =
            chunks x.shape.[0] |> List.mapi (fun i (start, len) ->
                use _ = torch.NewDisposeScope()
                let logLik = (VaeModel.logLikelihood m (z.narrow(0L, start, len)) (x.narrow(0L, start, len))).sum()
                // The prior enters once per full batch (the paper's M/N scaling with M = N).
                let objective = if i = 0 && c.WeightPrior then logLik.add(VaeModel.logPriorOf decoder, Torch.one) else logLik
                let gs = torch.autograd.grad([| objective |], tensors) |> Seq.toArray
                objective.detach().MoveToOuterDisposeScope(), gs |> Array.map (fun t -> t.MoveToOuterDisposeScope()))
        let grads = parts |> List.map snd |> List.reduce (fun a b -> Array.map2 (fun (x: Tensor) (y: Tensor) -> x.add(y, Torch.one)) a b)
        grads, parts |> List.map fst |> List.reduce (fun (a: Tensor) b -> a.add(b, Torch.one))

    let private stepInScope (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (s: TrainerState) : TrainerState * float =
        use _ = torch.NewDisposeScope()
        let m = s.Model
        let mcmc = s.Mcmc |> Option.defaultWith (fun () -> invalidArg (nameof s) "Monte Carlo EM needs its chains (Mcem.initChains)")
        let x = if c.Binarize then torch.bernoulli(data, generator = g) else data
        let z, logPxz, stepSize = eStep m x mcmc g
        let value = logPxz.mean()
        let tensors = VaeModel.decoderParameters m |> List.map (fun p -> p.Tensor) |> List.toArray
        let k = (VaeModel.encoderParameters m).Length
        let mutable opt = s.Optimizer
        // The decoder's accumulators (and Adam's first moments), which the M-step updates with the decoder.
        let decoderState (o: OptimizerState) = OptimizerState.slice k tensors.Length o
        let updated = let d = decoderState s.Optimizer in Array.concat [ tensors; d.SumSquares; d.FirstMoments ]
        // An iteration is one training step: a non-finite value in any of its updates undoes the ones before it, so
        // that the parameters and the optimiser's state are those of the last whole iteration, the step the error names.
        let saved = updated |> Array.map (fun t -> t.detach().clone())
        try
            for _ in 1 .. WeightUpdates do
                use _ = torch.NewDisposeScope()
                let grads, objective = mStepGradient c m x z
                Learner.requireFinite opt.Steps (objective.add(value, Torch.one)) grads |> ignore
                // Each full-batch update is one pass over the training set (a step-size schedule's clock; an iteration
                // counts WeightUpdates N samples).
                Optimizer.ascend c.Optimizer (float opt.Steps) (decoderState opt) tensors grads |> ignore
                opt <- { opt with Steps = opt.Steps + 1L }
        with :? NonFiniteBoundException as e ->
            Torch.noGrad (fun () -> Array.iter2 (fun (t: Tensor) (v: Tensor) -> t.copy_(v) |> ignore) updated saved)
            raise (NonFiniteBoundException(s.Optimizer.Steps / int64 WeightUpdates, e.Value))
        Torch.noGrad (fun () -> mcmc.Chains.copy_(z)) |> ignore
        { s with Optimizer = opt; Mcmc = Some { mcmc with StepSize = stepSize } }, value.ToDouble()

    /// One EM iteration on training data [N; D], in place: the E-step on every chain, then WeightUpdates
    /// Adagrad ascents of the decoder along mStepGradient (each update counts as an optimiser step). The
    /// encoder is not used. Data are binarised once per iteration when asked. Returns the mean log p(x, z)
    /// per datapoint at the new samples. A non-finite value raises NonFiniteBoundException for the iteration, with
    /// the decoder, Adagrad's sums and the chains as the iteration found them.
    let step (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (s: TrainerState) : TrainerState * float =
        let result = stepInScope c data g s
        // The E-step's leapfrog gradients leave native memory that only finalizers free (Torch.releaseFinalizedMemory):
        // every tensor is disposed in its scope (TorchSharp's scope statistics: 5280 made, 5280 disposed over 10
        // iterations), yet without this collection `vae train --algorithm mcem --ntrain 1000 --latent 3 --hidden 100
        // --samples 1000000` peaks at 1.50 GB resident instead of 0.98 GB (the same checkpoint bit for bit). Kept, once per
        // iteration, until TorchSharp's untracked native objects are found.
        Torch.releaseFinalizedMemory ()
        result
