namespace Vae.Core

open Vae
open System
open TorchSharp

/// The wake-sleep algorithm (Hinton et al. 1995), the paper's baseline (spec section 6), with the same
/// encoder and decoder networks and AEVB's settings (minibatch M, Adagrad, weight prior scaled by M/N), or with the
/// paper's code's recognition model and fantasies (LearnerConfig.WakeSleep).
[<RequireQualifiedAccess>]
module WakeSleep =

    /// One step on training data [N; D], in place:
    /// wake: z ~ q(z|x) on a minibatch; ascend log p(x, z) + (M/N) log p(theta) w.r.t. the decoder's theta;
    /// sleep: (z, x) ~ p(z) p(x|z); ascend log q(z|x) + (M/N) log p(phi) w.r.t. the encoder's phi.
    /// With GradientsFirst both gradients are taken before either update; with WakeUpdateFirst (the paper's code) the
    /// decoder moves before the fantasies are drawn, and is put back, with its optimiser state, when the sleep phase is
    /// not finite. Either way a non-finite value raises NonFiniteBoundException with every parameter unchanged, and the
    /// draws are the same. Both phases share one optimiser step count. Returns the minibatch's mean bound
    /// log p(x, z) - log q(z|x) under its own recognition model.
    let step (c: LearnerConfig) (data: Tensor) (g: torch.Generator) (s: TrainerState) : TrainerState * float =
        use _ = torch.NewDisposeScope()
        let m = s.Model
        let encoder = VaeModel.encoderParameters m
        let decoder = VaeModel.decoderParameters m
        let tensors (ps: NamedParameter list) = ps |> List.map (fun p -> p.Tensor) |> List.toArray
        let encState = OptimizerState.slice 0 encoder.Length s.Optimizer
        let decState = OptimizerState.slice encoder.Length decoder.Length s.Optimizer
        let check = Learner.requireFinite s.Optimizer.Steps

        // Wake phase.
        let x = Learner.minibatchAt c data g s.Optimizer.Steps
        let q = VaeModel.encode m x
        let eps = ElboEstimator.noise 1 c.BatchSize m g
        let z = (Distributions.reparameterise q eps).detach()
        let logPxz = VaeModel.logJoint m x z
        let wake = Learner.withWeightPrior c data.shape.[0] decoder (logPxz.sum())
        let wakeGrads = torch.autograd.grad([| wake |], tensors decoder) |> Seq.toArray
        let bound = check ((logPxz - Distributions.gaussianLogDensityOfNoise q eps).mean()) wakeGrads
        let passes = Learner.passes c data.shape.[0] s.Optimizer.Steps
        let ascendDecoder () = Optimizer.ascend c.Optimizer passes decState (tensors decoder) wakeGrads |> ignore
        // The paper's code's order: the decoder moves first; copies put it back if the sleep phase fails.
        let kept =
            match c.WakeSleepOrder with
            | GradientsFirst -> [||]
            | WakeUpdateFirst ->
                let copies = [| for t in Array.concat [ tensors decoder; decState.SumSquares; decState.FirstMoments ] -> t, t.detach().clone() |]
                ascendDecoder ()
                copies

        // Sleep phase: fantasies (z, x) from the generative model.
        let zp = torch.randn([| int64 c.BatchSize; int64 m.Config.LatentDim |], dtype = m.Config.DType, generator = g)
        let xp = Torch.noGrad (fun () -> WakeSleepVariant.fantasies c.WakeSleep m zp g)
        let sleep = Learner.withWeightPrior c data.shape.[0] encoder ((Distributions.gaussianLogDensity (VaeModel.encode m xp) zp).sum())
        // anglepy's recognition model: the prior on W = 10 W' adds precision 99 on W' (WakeSleepVariant).
        let sleep =
            if c.WeightPrior && WakeSleepVariant.scales c.WakeSleep then
                let w = m.Encoder.LogVar.Weight
                sleep + (w * w).sum() * (-0.5 * WakeSleepVariant.extraPrecision c.WakeSleep * float c.BatchSize / float data.shape.[0])
            else sleep
        let sleepGrads = torch.autograd.grad([| sleep |], tensors encoder) |> Seq.toArray
        try check sleep sleepGrads |> ignore
        with _ ->
            Torch.noGrad (fun () -> for t, copy in kept do t.copy_(copy) |> ignore)
            reraise ()

        if c.WakeSleepOrder = GradientsFirst then ascendDecoder ()
        match c.Optimizer with
        | AdagradOptimizer a ->
            // anglepy's scaled log-variance weights take their own settings (WakeSleepVariant).
            let settings = [| for p in encoder -> WakeSleepVariant.adagradFor c.WakeSleep a p.Name |]
            Adagrad.ascendEach settings encState (tensors encoder) sleepGrads |> ignore
        | AdamOptimizer _ -> Optimizer.ascend c.Optimizer passes encState (tensors encoder) sleepGrads |> ignore
        { s with Optimizer = { s.Optimizer with Steps = s.Optimizer.Steps + 1L } }, bound
